// Package preset reads the model presets built into the binary (configs/models: the
// reference's tiny and small, vit-b-32, rn50-tiny, and OpenAI's layouts vit-b-32-openai and
// rn50-openai) onto a model config.
package preset

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/clipgo/clipgo/configs"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/config"
)

// Load decodes configs/models/<name>.yaml (embedded in the binary) onto dst.
func Load(name string, dst *fusion.Config) error {
	raw, err := config.ReadFile(configs.FS, "models/"+name+".yaml")
	if err != nil {
		return fmt.Errorf("model_preset %q: no such preset (have %v)", name, Names())
	}
	return config.Decode("preset "+name, raw, dst)
}

// Names lists the presets.
func Names() []string {
	var names []string
	entries, _ := fs.ReadDir(configs.FS, "models")
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}
