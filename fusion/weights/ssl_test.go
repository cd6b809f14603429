package weights

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
)

// TestWriteSSL: a model.ssl model's clipgo checkpoint keeps the head (training state); as an
// open_clip state dict or a Hugging Face model it is left out, and what is written reads back
// as the model without model.ssl.
func TestWriteSSL(t *testing.T) {
	cfg := vitConfig(false)
	cfg.SSL = fusion.SSLConfig{Weight: 1, Hidden: 32, Out: 8}
	params := randomWeights(t, cfg)
	dir := t.TempDir()
	for _, c := range []struct {
		format Format
		out    string
		head   bool
	}{{Clipgo, "ckpt.safetensors", true}, {OpenCLIP, "oc.safetensors", false}, {HuggingFace, "hf", false}} {
		out := filepath.Join(dir, c.out)
		if err := Write(out, cfg, params, c.format, safetensors.F32); err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		if c.format == HuggingFace {
			out = filepath.Join(out, "model.safetensors")
		}
		got, read, err := fusion.ReadWeights(out, false)
		if err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		head := 0
		for _, p := range read {
			if strings.HasPrefix(p.Name, fusion.SSLHeadPrefix) {
				head++
			}
		}
		if got.SSL.On() != c.head || (head > 0) != c.head {
			t.Errorf("%s: model.ssl %+v and %d head tensors read back; want the head %v", c.format, got.SSL, head, c.head)
		}
	}
}
