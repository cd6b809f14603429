package preset

import (
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
)

// TestEveryPresetIsAModel: each built-in preset decodes onto an empty config into a valid
// model, and the OpenAI layouts use QuickGELU.
func TestEveryPresetIsAModel(t *testing.T) {
	names := Names()
	for _, want := range []string{"tiny", "small", "vit-b-32", "rn50-tiny", "vit-b-32-openai", "rn50-openai"} {
		if !slices.Contains(names, want) {
			t.Errorf("no preset %s (have %v)", want, names)
		}
	}
	for _, name := range names {
		var cfg fusion.Config
		if err := Load(name, &cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if openai := strings.HasSuffix(name, "-openai"); openai != cfg.QuickGELU {
			t.Errorf("%s: quick_gelu %v", name, cfg.QuickGELU)
		}
	}
	if err := Load("vit-h-14", &fusion.Config{}); err == nil {
		t.Error("an unknown preset loaded")
	}
}
