package fusion

import (
	"cmp"
	"fmt"
	"math"
	"strings"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
	G "gorgonia.org/gorgonia"
)

// SSLConfig is model.ssl, SLIP's multi-task objective (Mu et al. 2022): SimCLR's NT-Xent loss
// over the image tower's trunk features, through a projection head of its own, added to the
// contrastive loss times Weight. The views are the rows of a batch that share an image: the
// trainer's data.captions_per_image (2: SimCLR's two augmented views per image). YAML keys
// are those of `model.ssl.*`; off while Weight is 0.
type SSLConfig struct {
	Weight      float64 `yaml:"weight,omitempty" json:"weight,omitempty"`           // SLIP's ssl_scale (1.0)
	Temperature float64 `yaml:"temperature,omitempty" json:"temperature,omitempty"` // NT-Xent's τ (default 0.1, SLIP's)
	// Hidden and Out size the head, SLIP's 3-layer MLP (Linear, BatchNorm, ReLU, Linear,
	// BatchNorm, ReLU, Linear; 4096 and 256 for ViT-B/16): defaults 4× the image tower's
	// width and the embedding width, scaled to clipgo's small models.
	Hidden int `yaml:"hidden,omitempty" json:"hidden,omitempty"`
	Out    int `yaml:"out,omitempty" json:"out,omitempty"`
}

// SSLHeadPrefix names the head's tensors (ssl_head.layer1.weight, ssl_head.bn1.running_mean
// …, SLIP's image_mlp layout): training state that checkpoints carry and every inference path
// ignores.
const SSLHeadPrefix = "ssl_head."

// DefaultSSLTemperature is model.ssl.temperature when the recipe gives none.
const DefaultSSLTemperature = 0.1

// On says whether the SSL loss is on.
func (c SSLConfig) On() bool { return c.Weight > 0 }

func (c SSLConfig) temperature() float64 { return cmp.Or(c.Temperature, DefaultSSLTemperature) }

// sizes returns the head's hidden and output widths for an image tower of width w.
func (c SSLConfig) sizes(cfg Config) (hidden, out int) {
	return cmp.Or(c.Hidden, 4*cfg.Vision.Width), cmp.Or(c.Out, cfg.EmbedDim)
}

// validate refuses impossible settings, naming the key.
func (c SSLConfig) validate(cfg Config) error {
	switch {
	case c.Weight < 0 || math.IsNaN(c.Weight) || math.IsInf(c.Weight, 0):
		return fmt.Errorf("model.ssl.weight %g must be finite and not negative (0: off)", c.Weight)
	case c.Temperature < 0 || math.IsNaN(c.Temperature) || math.IsInf(c.Temperature, 0):
		return fmt.Errorf("model.ssl.temperature %g must be positive (0: %g)", c.Temperature, DefaultSSLTemperature)
	case c.Hidden < 0 || c.Hidden > MaxEmbedDim || c.Out < 0 || c.Out > MaxEmbedDim:
		return fmt.Errorf("model.ssl.hidden %d and model.ssl.out %d must be in [0, %d] (0: the default)", c.Hidden, c.Out, MaxEmbedDim)
	case c.On() && cfg.Vision.Type != "" && cfg.Vision.Type != vision.TypeViT:
		return fmt.Errorf("model.ssl reads a ViT's class token before its projection: model.vision.type %q has none", cfg.Vision.Type)
	}
	return nil
}

// pooler is an image tower with a trunk output before its projection (vision.ViT).
type pooler interface{ Pooled() *G.Node }

// sslLoss adds the head over the trunk features pooled [B, width] and returns the NT-Xent
// loss of its normalised outputs, the rows' views told apart by ids (read at each run).
func sslLoss(b *nn.Builder, cfg Config, pooled *G.Node, ids []int32) (*G.Node, error) {
	hidden, out := cfg.SSL.sizes(cfg)
	x := pooled
	in := cfg.Vision.Width
	for i, width := range []int{hidden, hidden, out} {
		// torch.nn.Linear's initialisation: U(±1/√in) for weight and bias.
		bound := 1 / math.Sqrt(float64(in))
		l, err := b.NewLinear(fmt.Sprintf("%slayer%d", SSLHeadPrefix, i+1), in, width, nn.Uniform(bound), nn.Uniform(bound))
		if err != nil {
			return nil, err
		}
		if x, err = l.Forward(x); err != nil {
			return nil, err
		}
		in = width
		if i == 2 {
			break
		}
		bn, err := b.NewBatchNorm2D(fmt.Sprintf("%sbn%d", SSLHeadPrefix, i+1), width, nil)
		if err != nil {
			return nil, err
		}
		if x, err = bn.Forward(x); err != nil {
			return nil, err
		}
		if x, err = nn.ReLU(x); err != nil {
			return nil, err
		}
	}
	z, err := nn.L2Normalize(x)
	if err != nil {
		return nil, err
	}
	loss, err := ntXentLossOp(z, ids, cfg.SSL.temperature())
	if err != nil {
		return nil, fmt.Errorf("model.ssl: %w", err)
	}
	return loss, nil
}

// withSSL returns loss plus model.ssl.weight times the SSL loss of the image tower's trunk,
// or loss when model.ssl is off.
func withSSL(b *nn.Builder, cfg Config, tower any, loss *G.Node, ids []int32) (*G.Node, error) {
	if !cfg.SSL.On() {
		return loss, nil
	}
	p, ok := tower.(pooler)
	if !ok || p.Pooled() == nil {
		return nil, fmt.Errorf("model.ssl: the image tower has no trunk output before its projection")
	}
	ssl, err := sslLoss(b, cfg, p.Pooled(), ids)
	if err != nil {
		return nil, err
	}
	return weightedSumOp(loss, ssl, cfg.SSL.Weight)
}

// InferenceWeights returns a model's config and weights without what only training uses (the
// model.ssl head, and the key that makes it): what a file for other tools (open_clip, Hugging
// Face) holds. params is left alone.
func InferenceWeights(cfg Config, params []*nn.Param) (Config, []*nn.Param) {
	cfg.SSL = SSLConfig{}
	kept := make([]*nn.Param, 0, len(params))
	for _, p := range params {
		if !strings.HasPrefix(p.Name, SSLHeadPrefix) {
			kept = append(kept, p)
		}
	}
	return cfg, kept
}
