// Package vision is the image tower: a ViT as open_clip builds it.
package vision

import "fmt"

// Config sizes the vision transformer. YAML keys are those of `model.vision.*`.
type Config struct {
	// Type names the tower: "vit" (the default when empty).
	Type      string  `yaml:"type,omitempty" json:"type,omitempty"`
	ImageSize int     `yaml:"image_size" json:"image_size"` // input side in pixels
	PatchSize int     `yaml:"patch_size" json:"patch_size"` // side of a square patch; divides ImageSize
	Width     int     `yaml:"width" json:"width"`           // token width
	Layers    int     `yaml:"layers" json:"layers"`         // residual blocks
	Heads     int     `yaml:"heads" json:"heads"`           // attention heads; divides Width
	MLPRatio  float64 `yaml:"mlp_ratio" json:"mlp_ratio"`   // MLP hidden width / Width (4 in CLIP)
}

// TypeViT names the vision transformer.
const TypeViT = "vit"

// Validate refuses impossible sizes, naming the key.
func (c Config) Validate() error {
	switch {
	case c.Type != "" && c.Type != TypeViT:
		return fmt.Errorf("model.vision.type %q is not a known image tower (want %q)", c.Type, TypeViT)
	case c.ImageSize <= 0 || c.PatchSize <= 0 || c.Width <= 0 || c.Layers <= 0 || c.Heads <= 0:
		return fmt.Errorf("model.vision: image_size, patch_size, width, layers and heads must be positive (got %d, %d, %d, %d, %d)",
			c.ImageSize, c.PatchSize, c.Width, c.Layers, c.Heads)
	case c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("model.vision.image_size %d is not divisible by model.vision.patch_size %d", c.ImageSize, c.PatchSize)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("model.vision.width %d is not divisible by model.vision.heads %d", c.Width, c.Heads)
	case c.MLPRatio <= 0 || float64(int(float64(c.Width)*c.MLPRatio)) != float64(c.Width)*c.MLPRatio:
		return fmt.Errorf("model.vision.mlp_ratio %g must be positive and give a whole MLP width for width %d", c.MLPRatio, c.Width)
	}
	return nil
}

// Grid returns the number of patches along a side.
func (c Config) Grid() int { return c.ImageSize / c.PatchSize }

// Tokens returns the sequence length: one class token plus Grid² patches.
func (c Config) Tokens() int { return c.Grid()*c.Grid() + 1 }
