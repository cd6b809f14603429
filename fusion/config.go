// Package fusion is the joint CLIP model: both towers, their projections into one embedding
// space, L2 normalisation, the learnable logit scale and the symmetric contrastive loss.
package fusion

import (
	"fmt"

	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// Config sizes a CLIP model. YAML keys are those of `model.*`.
type Config struct {
	EmbedDim  int           `yaml:"embed_dim" json:"embed_dim"`   // joint embedding width
	QuickGELU bool          `yaml:"quick_gelu" json:"quick_gelu"` // OpenAI's x·σ(1.702x) instead of erf GELU
	Vision    vision.Config `yaml:"vision" json:"vision"`
	Text      text.Config   `yaml:"text" json:"text"`
}

// Validate refuses impossible sizes, naming the key.
func (c Config) Validate() error {
	if c.EmbedDim <= 0 {
		return fmt.Errorf("model.embed_dim %d must be positive", c.EmbedDim)
	}
	if err := c.Vision.Validate(); err != nil {
		return err
	}
	return c.Text.Validate()
}
