// Package fusion is the two-tower model: an image and a text tower composed through their
// interfaces, L2 normalisation, the training objective behind the Loss interface (CLIP's
// symmetric contrastive loss, SigLIP's sigmoid loss), the training graph and the inference
// path (Encoder).
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
	// Loss names the training objective: "clip" (the default when empty) or "siglip". It is
	// the model's, not only the trainer's, because a loss may own parameters (SigLIP's
	// logit_bias) that the checkpoint then holds.
	Loss string `yaml:"loss,omitempty" json:"loss,omitempty"`
}

// Loss names.
const (
	LossCLIP   = "clip"
	LossSigLIP = "siglip"
)

// Objective returns the Loss c.Loss names.
func (c Config) Objective() (Loss, error) {
	switch c.Loss {
	case "", LossCLIP:
		return CLIP{}, nil
	case LossSigLIP:
		return SigLIP{}, nil
	}
	return nil, fmt.Errorf("model.loss %q is not a known loss (want %q or %q)", c.Loss, LossCLIP, LossSigLIP)
}

// Validate refuses impossible sizes, naming the key.
func (c Config) Validate() error {
	if c.EmbedDim <= 0 {
		return fmt.Errorf("model.embed_dim %d must be positive", c.EmbedDim)
	}
	if _, err := c.Objective(); err != nil {
		return err
	}
	if err := c.Vision.Validate(); err != nil {
		return err
	}
	return c.Text.Validate()
}
