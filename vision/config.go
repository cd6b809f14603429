// Package vision holds the image towers as open_clip builds them: the vision transformer (ViT)
// and the ModifiedResNet of OpenAI's RN50 family, both behind the Tower interface.
package vision

import "fmt"

// Config sizes an image tower. YAML keys are those of `model.vision.*`. Which keys matter
// depends on Type: a ViT reads patch_size, layers, mlp_ratio; a ModifiedResNet reads
// stage_layers instead (width is its stem width, heads its attention pool's).
type Config struct {
	// Type names the tower: "vit" (the default when empty) or "resnet".
	Type      string  `yaml:"type,omitempty" json:"type,omitempty"`
	ImageSize int     `yaml:"image_size" json:"image_size"` // input side in pixels
	PatchSize int     `yaml:"patch_size" json:"patch_size"` // ViT: side of a square patch; divides ImageSize
	Width     int     `yaml:"width" json:"width"`           // ViT: token width; ResNet: stem width (layer1's planes)
	Layers    int     `yaml:"layers" json:"layers"`         // ViT: residual blocks
	Heads     int     `yaml:"heads" json:"heads"`           // attention heads; divide the attended width
	MLPRatio  float64 `yaml:"mlp_ratio" json:"mlp_ratio"`   // ViT: MLP hidden width / Width (4 in CLIP)
	// StageLayers is a ResNet's Bottleneck blocks in each of its four stages (RN50: 3, 4, 6, 3;
	// open_clip's vision_cfg.layers). Left out of YAML and JSON when zero, so that a ViT's
	// config reads and writes as before.
	StageLayers StageLayers `yaml:"stage_layers,omitempty" json:"stage_layers,omitzero"`
	// PatchDropout is the share of a ViT's patch tokens dropped at random from each image in
	// training (FLIP, Li et al. 2023; open_clip's patch_dropout): the class token and
	// max(1, ⌊Grid²·(1−p)⌋) patches go through the transformer, so a step costs about 1−p of
	// the tokens. Inference and evaluation graphs keep every patch. In [0, 1); 0 (the default,
	// left out of YAML and JSON) drops none.
	PatchDropout float64 `yaml:"patch_dropout,omitempty" json:"patch_dropout,omitempty"`
}

// StageLayers counts a ResNet's blocks per stage. An array keeps Config comparable (resume
// compares configs with ==).
type StageLayers [4]int

// IsZero reports whether no stage is set: the omitempty/omitzero test of YAML and JSON.
func (s StageLayers) IsZero() bool { return s == StageLayers{} }

// Tower types.
const (
	TypeViT    = "vit"
	TypeResNet = "resnet"
)

// ResNetReduction is how much a ModifiedResNet shrinks the image side before its attention
// pool: the stem's stride 2 and pool 2, and the stride 2 of three stages.
const ResNetReduction = 32

// Limits on a tower's sizes, generous (ViT-L/14@336: image 336, patch 14, width 1024, 24
// layers, 16 heads; ViT-bigG/14: width 1664, 48 layers; RN50x64: width 128) but finite, so that
// sizes read from outside (a config, a checkpoint's metadata) cannot make clipgo allocate
// blindly: whether a model within them fits the machine is fusion.EstimateMemory's question.
const (
	MaxImageSize   = 4096
	MaxPatchSize   = 1024
	MaxWidth       = 16384 // ViT token width
	MaxResNetWidth = 4096  // ResNet stem width (its last stage is 32 times wider)
	MaxLayers      = 1024  // ViT blocks; ResNet blocks per stage
	MaxHeads       = 1024
	MaxMLPRatio    = 64
)

// Validate refuses impossible sizes and sizes beyond the limits above, naming the key.
func (c Config) Validate() error {
	if err := c.checkLimits(); err != nil {
		return err
	}
	switch c.Type {
	case "", TypeViT:
		return c.validateViT()
	case TypeResNet:
		return c.validateResNet()
	}
	return fmt.Errorf("model.vision.type %q is not a known image tower (want %q or %q)", c.Type, TypeViT, TypeResNet)
}

func (c Config) checkLimits() error {
	width := MaxWidth
	if c.Type == TypeResNet {
		width = MaxResNetWidth
	}
	for _, f := range []struct {
		key      string
		val, max int
	}{{"image_size", c.ImageSize, MaxImageSize}, {"patch_size", c.PatchSize, MaxPatchSize}, {"width", c.Width, width},
		{"layers", c.Layers, MaxLayers}, {"heads", c.Heads, MaxHeads}} {
		if f.val > f.max {
			return fmt.Errorf("model.vision.%s %d is over the limit %d", f.key, f.val, f.max)
		}
	}
	for _, n := range c.StageLayers {
		if n > MaxLayers {
			return fmt.Errorf("model.vision.stage_layers %v: %d blocks in a stage is over the limit %d", c.StageLayers, n, MaxLayers)
		}
	}
	if c.MLPRatio > MaxMLPRatio {
		return fmt.Errorf("model.vision.mlp_ratio %g is over the limit %d", c.MLPRatio, MaxMLPRatio)
	}
	return nil
}

func (c Config) validateViT() error {
	switch {
	case c.ImageSize <= 0 || c.PatchSize <= 0 || c.Width <= 0 || c.Layers <= 0 || c.Heads <= 0:
		return fmt.Errorf("model.vision: image_size, patch_size, width, layers and heads must be positive (got %d, %d, %d, %d, %d)",
			c.ImageSize, c.PatchSize, c.Width, c.Layers, c.Heads)
	case c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("model.vision.image_size %d is not divisible by model.vision.patch_size %d", c.ImageSize, c.PatchSize)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("model.vision.width %d is not divisible by model.vision.heads %d", c.Width, c.Heads)
	case c.MLPRatio <= 0 || float64(int(float64(c.Width)*c.MLPRatio)) != float64(c.Width)*c.MLPRatio:
		return fmt.Errorf("model.vision.mlp_ratio %g must be positive and give a whole MLP width for width %d", c.MLPRatio, c.Width)
	case !c.StageLayers.IsZero():
		return fmt.Errorf("model.vision.stage_layers %v is for type %q; a ViT has model.vision.layers", c.StageLayers, TypeResNet)
	case !(c.PatchDropout >= 0 && c.PatchDropout < 1):
		return fmt.Errorf("model.vision.patch_dropout %g must be in [0, 1)", c.PatchDropout)
	}
	return nil
}

func (c Config) validateResNet() error {
	switch {
	case c.ImageSize <= 0 || c.ImageSize%ResNetReduction != 0:
		return fmt.Errorf("model.vision.image_size %d must be a positive multiple of %d for a ResNet", c.ImageSize, ResNetReduction)
	case c.Width <= 0 || c.Width%2 != 0:
		return fmt.Errorf("model.vision.width %d must be positive and even (the stem starts at width/2)", c.Width)
	case c.Heads <= 0 || c.FeatureWidth()%c.Heads != 0:
		return fmt.Errorf("model.vision.heads %d must be positive and divide the attention pool's width %d (32 × width)", c.Heads, c.FeatureWidth())
	}
	if c.PatchDropout != 0 {
		return fmt.Errorf("model.vision.patch_dropout %g is for a ViT's patch tokens; a ResNet has none", c.PatchDropout)
	}
	for _, n := range c.StageLayers {
		if n <= 0 {
			return fmt.Errorf("model.vision.stage_layers %v: each of the four stages needs at least one block", c.StageLayers)
		}
	}
	return nil
}

// FeatureWidth is a ResNet's channels after its last stage, the attention pool's width:
// 8 × Width planes × the Bottleneck expansion 4.
func (c Config) FeatureWidth() int { return 32 * c.Width }

// Grid returns the side of the token grid: the patches along a side (ViT) or the last
// feature map's side (ResNet).
func (c Config) Grid() int {
	if c.Type == TypeResNet {
		return c.ImageSize / ResNetReduction
	}
	return c.ImageSize / c.PatchSize
}

// Tokens returns the sequence length: one class (ViT) or mean (ResNet) token plus Grid².
func (c Config) Tokens() int { return c.Grid()*c.Grid() + 1 }

// KeptPatches is the number of patch tokens a training step keeps of each image under
// PatchDropout: max(1, ⌊Grid²·(1−p)⌋), open_clip's PatchDropout count; Grid² when p is 0.
func (c Config) KeptPatches() int {
	n := c.Grid() * c.Grid()
	if c.PatchDropout <= 0 {
		return n
	}
	return max(1, int(float64(n)*(1-c.PatchDropout)))
}
