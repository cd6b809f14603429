package tests

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/train"
)

// TestPretrainSSL trains with model.ssl (SLIP's SimCLR loss on two views of each image): the
// checkpoint holds the head (its batch-norm statistics included) and loads on the inference
// path; a run stopped part-way and resumed logs the same losses and ends with the same
// weights as one that never stopped; without two views per image the recipe is refused.
func TestPretrainSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three short runs (about 20 s on 2 cores); run without -short")
	}
	data := prepareSynthetic(t, 100)
	sets := []string{"train.steps=8", "train.batch_size=8", "train.warmup=1", "train.log_every=1", "train.val_every=0",
		"train.checkpoint_every=100", "model.vision.layers=1", "model.text.layers=1",
		"model.ssl.weight=1", "model.ssl.hidden=64", "data.captions_per_image=2"}
	ctx := context.Background()
	straight := filepath.Join(t.TempDir(), "straight")
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: straight}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	resumed := filepath.Join(t.TempDir(), "resumed")
	if s, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, StopAt: 3}, quiet, io.Discard); err != nil || !s.Stopped {
		t.Fatalf("first part: %+v, %v", s, err)
	}
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, Resume: "latest"}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, got := readLosses(t, straight), readLosses(t, resumed)
	if len(want) != 8 || len(got) != 8 {
		t.Fatalf("logged %d and %d steps, want 8 each", len(want), len(got))
	}
	for step, l := range want {
		if got[step] != l {
			t.Errorf("step %d: loss %v after the resume, %v uninterrupted", step, got[step], l)
		}
	}
	ckpt := straight + "/step-000008.safetensors"
	a, b := readTensors(t, ckpt), readTensors(t, resumed+"/step-000008.safetensors")
	head := 0
	for name, v := range a {
		if strings.HasPrefix(name, fusion.SSLHeadPrefix) {
			head++
		}
		for i := range v {
			if b[name][i] != v[i] {
				t.Fatalf("%s[%d] = %v after the resume, %v uninterrupted", name, i, b[name][i], v[i])
			}
		}
	}
	if head != 16 { // 3 linear layers (weight, bias), 2 batch norms (weight, bias, 3 statistics)
		t.Errorf("the checkpoint holds %d ssl_head tensors, want 16", head)
	}
	if rv := a[fusion.SSLHeadPrefix+"bn1.running_var"]; rv == nil || rv[0] == 1 {
		t.Error("the head's running variance never moved")
	}
	enc, err := fusion.LoadEncoder(ckpt, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	enc.Close()
	if _, err := train.LoadConfig("demo", append([]string{"data.train=" + data}, sets[:len(sets)-1]...)); err == nil ||
		!strings.Contains(err.Error(), "data.captions_per_image") {
		t.Errorf("model.ssl with one view per image: %v", err)
	}
}
