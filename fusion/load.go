package fusion

import (
	"encoding/json"
	"fmt"

	"github.com/clipgo/clipgo/internal/safetensors"
)

// ConfigKey is the checkpoint metadata key under which training records the model's Config
// (JSON, checkpoint.Meta.Config), so that a checkpoint alone rebuilds its model.
const ConfigKey = "config"

// ReadConfig returns the model config recorded in a checkpoint's metadata.
func ReadConfig(path string) (Config, error) {
	f, err := safetensors.OpenFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	raw, ok := f.Metadata.Get(ConfigKey)
	if !ok {
		return Config{}, fmt.Errorf("checkpoint %s: no %q metadata: not a clipgo training checkpoint", path, ConfigKey)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return Config{}, fmt.Errorf("checkpoint %s: model config: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return cfg, nil
}
