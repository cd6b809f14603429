package export

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/weights"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// TestRunWritesBothEncoders: a clipgo checkpoint becomes DIR/image_encoder.onnx and
// DIR/text_encoder.onnx, ONNX model files (a ModelProto starting with ir_version 8) holding the
// producer and the weights' names; a second run over them replaces them. Bad requests say what
// is wrong. (fusion/onnx's tests check the graphs with onnx's checker and onnxruntime.)
func TestRunWritesBothEncoders(t *testing.T) {
	cfg := fusion.Config{EmbedDim: 8,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 300, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4}}
	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.safetensors")
	if err := weights.Write(ckpt, cfg, params, weights.Clipgo, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "onnx")
	for range 2 {
		r, err := Run(Config{Checkpoint: ckpt, Out: out, Producer: "clipgo test"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Model != cfg {
			t.Errorf("model %+v, want %+v", r.Model, cfg)
		}
		for _, f := range []struct {
			path   string
			size   int64
			weight string
		}{{r.ImageFile, r.ImageBytes, "visual.conv1.weight"}, {r.TextFile, r.TextBytes, "token_embedding.weight"}} {
			b, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != f.size || !bytes.HasPrefix(b, []byte{0x08, 0x08}) || !bytes.Contains(b, []byte("clipgo test")) || !bytes.Contains(b, []byte(f.weight)) {
				t.Errorf("%s: %d bytes (reported %d), starts % x: not an ONNX model of ir_version 8 by clipgo holding %s", f.path, len(b), f.size, b[:min(len(b), 4)], f.weight)
			}
		}
		if r.ImageFile != filepath.Join(out, ImageFile) || r.TextFile != filepath.Join(out, TextFile) {
			t.Errorf("wrote %s and %s", r.ImageFile, r.TextFile)
		}
	}
	names := func() []string {
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if got := names(); !slices.Equal(got, []string{ImageFile, TextFile}) {
		t.Errorf("%s holds %v, want the two encoders alone (no temporary files left)", out, got)
	}
	// With external data the weights go beside each graph, and the graphs shrink to their
	// structure; an inline export afterwards removes the data files.
	r, err := Run(Config{Checkpoint: ckpt, Out: out, ExternalData: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.ImageData != r.ImageFile+DataSuffix || r.TextData != r.TextFile+DataSuffix {
		t.Errorf("external data in %q and %q", r.ImageData, r.TextData)
	}
	for _, f := range []struct {
		graph, data string
		total       int64
	}{{r.ImageFile, r.ImageData, r.ImageBytes}, {r.TextFile, r.TextData, r.TextBytes}} {
		g, errG := os.Stat(f.graph)
		d, errD := os.Stat(f.data)
		if errG != nil || errD != nil {
			t.Fatalf("%v, %v", errG, errD)
		}
		if g.Size()+d.Size() != f.total || g.Size() > 64<<10 || d.Size() < 4<<10 {
			t.Errorf("%s: graph %d bytes, data %d bytes, reported %d in all", f.graph, g.Size(), d.Size(), f.total)
		}
	}
	if _, err := Run(Config{Checkpoint: ckpt, Out: out}); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{ImageFile, TextFile}) {
		t.Errorf("after an inline export %s holds %v, want the two encoders alone", out, got)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Checkpoint: ckpt, Out: out, Format: "tflite"}, `format "tflite"`},
		{Config{Checkpoint: ckpt}, "no output directory"},
		{Config{Out: out}, "--checkpoint is required"},
		{Config{Checkpoint: filepath.Join(dir, "missing.safetensors"), Out: out}, "missing.safetensors"},
	} {
		if _, err := Run(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}
