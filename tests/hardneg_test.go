package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/stages/train"
)

// TestPretrainHardNegatives trains with train.hard_negatives (every epoch, groups of 4) into
// the third epoch: epochs 1 and 2 are mined (their orders saved in the run directory), the
// model sees epoch 1's images in exactly its saved order, and a run stopped in the middle of
// epoch 1 and resumed logs the same losses and ends with the same weights as one that never
// stopped (the resume reads the saved order: the weights it was mined with are gone); with two
// data streams each mines its own share.
func TestPretrainHardNegatives(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice for 26 steps (about 30 s on 2 busy cores); run without -short")
	}
	data := prepareSynthetic(t, 100) // 86 training images: 10 batches of 8 an epoch
	sets := []string{"train.steps=26", "train.batch_size=8", "train.warmup=2", "train.log_every=1", "train.val_every=0",
		"train.checkpoint_every=100", "model.vision.layers=1", "model.text.layers=1",
		"train.hard_negatives.every_epochs=1", "train.hard_negatives.group=4"}
	ctx := context.Background()
	straight := filepath.Join(t.TempDir(), "straight")
	samples := filepath.Join(t.TempDir(), "samples.jsonl")
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: straight, SampleLog: samples}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	resumed := filepath.Join(t.TempDir(), "resumed")
	if s, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, StopAt: 15}, quiet, io.Discard); err != nil || !s.Stopped {
		t.Fatalf("first part: %+v, %v; want stopped at 15", s, err)
	}
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, Resume: "latest"}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}

	orders := map[int][]string{}
	for _, epoch := range []int{1, 2} {
		name := filepath.Join("hard_negatives", "stream-000-epoch-00000"+string(rune('0'+epoch))+".json")
		raw := readFile(filepath.Join(straight, name))
		if !bytes.Equal(raw, readFile(filepath.Join(resumed, name))) {
			t.Errorf("%s differs between the straight and the resumed run", name)
		}
		var f struct{ Keys []string }
		err := json.Unmarshal(raw, &f)
		distinct := slices.Compact(slices.Sorted(slices.Values(f.Keys)))
		if err != nil || len(f.Keys) < 80 || len(distinct) != len(f.Keys) {
			t.Fatalf("%s: %d keys (%d distinct), %v; want every training image once", name, len(f.Keys), len(distinct), err)
		}
		orders[epoch] = f.Keys
	}
	if slices.Equal(orders[1], orders[2]) {
		t.Error("epochs 1 and 2 were mined in the same order")
	}
	var seen []string
	sc := bufio.NewScanner(bytes.NewReader(readFile(samples)))
	for sc.Scan() {
		var s runlog.Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if s.Epoch == 1 {
			seen = append(seen, s.Key)
		}
	}
	if len(seen) != 80 || !slices.Equal(seen, orders[1][:80]) {
		t.Fatalf("epoch 1 trained on %d images, not in its mined order's first 80:\n%v\n%v", len(seen), seen, orders[1][:len(seen)])
	}

	want, got := readLosses(t, straight), readLosses(t, resumed)
	if len(want) != 26 || len(got) != 26 {
		t.Fatalf("logged %d and %d steps, want 26 each", len(want), len(got))
	}
	for step, l := range want {
		if got[step] != l {
			t.Errorf("step %d: loss %v after the resume, %v uninterrupted", step, got[step], l)
		}
	}
	a, b := readTensors(t, straight+"/step-000026.safetensors"), readTensors(t, resumed+"/step-000026.safetensors")
	for name, v := range a {
		if !slices.Equal(b[name], v) {
			t.Fatalf("%s differs after the resume", name)
		}
	}

	// Two data streams of unequal shares end their epochs at different steps: each mines its
	// own share when its epoch ends.
	streams := filepath.Join(t.TempDir(), "streams")
	cfg := demoConfig(t, data, append(slices.Clone(sets), "data.streams=2", "train.steps=18")...)
	if _, err := train.Run(ctx, train.Options{Config: cfg, RunDir: streams}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	shares := 0
	for s := range 2 {
		var f struct{ Keys []string }
		name := filepath.Join(streams, "hard_negatives", "stream-00"+string(rune('0'+s))+"-epoch-000001.json")
		if err := json.Unmarshal(readFile(name), &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		shares += len(f.Keys)
	}
	if shares != 86 {
		t.Errorf("the two streams' mined orders hold %d keys, want the split's 86", shares)
	}
}
