// Package text is the text tower: a causal transformer as open_clip builds it, pooled at each
// caption's EOT token. The tokenizer that makes its input is text/tokenizer.
package text

import (
	"fmt"

	"github.com/clipgo/clipgo/text/tokenizer"
)

// Config sizes the text transformer. YAML keys are those of `model.text.*`.
type Config struct {
	ContextLength int     `yaml:"context_length" json:"context_length"` // tokens per caption, SOT and EOT included
	VocabSize     int     `yaml:"vocab_size" json:"vocab_size"`         // rows of the token embedding; ids must be below it
	Width         int     `yaml:"width" json:"width"`
	Layers        int     `yaml:"layers" json:"layers"`
	Heads         int     `yaml:"heads" json:"heads"`         // divides Width
	MLPRatio      float64 `yaml:"mlp_ratio" json:"mlp_ratio"` // MLP hidden width / Width (4 in CLIP)
}

// Limits on the text tower's sizes, generous (the CLIP vocabulary is 49,408 ids; the largest
// open_clip text towers are width 1280, 32 layers, 20 heads) but finite, so that sizes read
// from outside (a config, a checkpoint's metadata) cannot make clipgo allocate blindly.
const (
	MaxVocabSize = 1 << 22
	MaxWidth     = 16384
	MaxLayers    = 1024
	MaxHeads     = 1024
	MaxMLPRatio  = 64
)

// Validate refuses impossible sizes and sizes beyond the limits above, naming the key.
func (c Config) Validate() error {
	for _, f := range []struct {
		key      string
		val, max int
	}{{"vocab_size", c.VocabSize, MaxVocabSize}, {"width", c.Width, MaxWidth}, {"layers", c.Layers, MaxLayers}, {"heads", c.Heads, MaxHeads}} {
		if f.val > f.max {
			return fmt.Errorf("model.text.%s %d is over the limit %d", f.key, f.val, f.max)
		}
	}
	if c.MLPRatio > MaxMLPRatio {
		return fmt.Errorf("model.text.mlp_ratio %g is over the limit %d", c.MLPRatio, MaxMLPRatio)
	}
	switch {
	case c.ContextLength < 2 || c.ContextLength > tokenizer.MaxContextLength:
		return fmt.Errorf("model.text.context_length %d is outside [2, %d]", c.ContextLength, tokenizer.MaxContextLength)
	case c.VocabSize <= 0 || c.Width <= 0 || c.Layers <= 0 || c.Heads <= 0:
		return fmt.Errorf("model.text: vocab_size, width, layers and heads must be positive (got %d, %d, %d, %d)",
			c.VocabSize, c.Width, c.Layers, c.Heads)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("model.text.width %d is not divisible by model.text.heads %d", c.Width, c.Heads)
	case c.MLPRatio <= 0 || float64(int(float64(c.Width)*c.MLPRatio)) != float64(c.Width)*c.MLPRatio:
		return fmt.Errorf("model.text.mlp_ratio %g must be positive and give a whole MLP width for width %d", c.MLPRatio, c.Width)
	}
	return nil
}
