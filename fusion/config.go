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
	// Loss names the training objective: "clip" (the default when empty), "siglip" or
	// "triplet". It is
	// the model's, not only the trainer's, because a loss may own parameters (SigLIP's
	// logit_bias) that the checkpoint then holds.
	Loss    string        `yaml:"loss,omitempty" json:"loss,omitempty"`
	Triplet TripletConfig `yaml:"triplet,omitempty" json:"triplet,omitempty"` // the margin loss (model.loss triplet, or added to clip)
	SSL     SSLConfig     `yaml:"ssl,omitempty" json:"ssl,omitempty"`         // SLIP's image self-supervised loss, added to the objective (ssl.go)
}

// MaxEmbedDim bounds the joint embedding's width as the towers' limits bound theirs (ViT-bigG
// embeds in 1,280 dimensions), so that a size read from outside cannot allocate blindly.
const MaxEmbedDim = 16384

// Loss names.
const (
	LossCLIP    = "clip"
	LossSigLIP  = "siglip"
	LossTriplet = "triplet"
)

// Objective returns the Loss c.Loss names.
func (c Config) Objective() (Loss, error) {
	t := c.Triplet
	switch {
	case t.Margin < 0 || t.Margin > 2 || t.Weight < 0 || t.Margin != t.Margin || t.Weight != t.Weight:
		return nil, fmt.Errorf("model.triplet: margin %g must be in [0, 2] (cosines differ by at most 2) and weight %g not negative", t.Margin, t.Weight)
	case t.Weight > 0 && c.Loss != "" && c.Loss != LossCLIP:
		return nil, fmt.Errorf("model.triplet.weight adds the triplet loss to clip's, not to %s's", c.Loss)
	}
	switch c.Loss {
	case "", LossCLIP:
		if t.Weight > 0 {
			return withTriplet{Triplet{t}}, nil
		}
		return CLIP{}, nil
	case LossSigLIP:
		return SigLIP{}, nil
	case LossTriplet:
		return Triplet{t}, nil
	}
	return nil, fmt.Errorf("model.loss %q is not a known loss (want %s, %s or %s)", c.Loss, LossCLIP, LossSigLIP, LossTriplet)
}

// Validate refuses impossible sizes, naming the key.
func (c Config) Validate() error {
	if c.EmbedDim <= 0 || c.EmbedDim > MaxEmbedDim {
		return fmt.Errorf("model.embed_dim %d must be in [1, %d]", c.EmbedDim, MaxEmbedDim)
	}
	if _, err := c.Objective(); err != nil {
		return err
	}
	if err := c.SSL.validate(c); err != nil {
		return err
	}
	if err := c.Vision.Validate(); err != nil {
		return err
	}
	return c.Text.Validate()
}
