package fusion

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/vision"
)

// HeadWidth is open_clip's width per attention head, from which its configs derive the head
// counts (vision_heads = width / 64; a ModifiedResNet's attention pool: width·32 / 64).
const HeadWidth = 64

// ConfigFromShapes recovers a model's sizes from its open_clip state_dict shapes — what a
// checkpoint or a PyTorch export holds — as the reference does: every size follows from the
// shapes except the head counts, which the caller gives (0: open_clip's rule, HeadWidth per
// head). The image tower is a ModifiedResNet when the shapes have its attention pool.
func ConfigFromShapes(shapes map[string][]int, visionHeads, textHeads int) (Config, error) {
	if _, ok := shapes["visual.attnpool.positional_embedding"]; ok {
		return resNetConfigFromShapes(shapes, visionHeads, textHeads)
	}
	get := func(name string, rank int) ([]int, error) {
		s, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("no tensor %s", name)
		}
		if len(s) != rank {
			return nil, fmt.Errorf("%s has shape %v, want rank %d", name, s, rank)
		}
		return s, nil
	}
	var errs []string
	need := func(name string, rank int) []int {
		s, err := get(name, rank)
		if err != nil {
			errs = append(errs, err.Error())
			return make([]int, rank)
		}
		return s
	}
	conv := need("visual.conv1.weight", 4)         // [W,3,P,P]
	vpos := need("visual.positional_embedding", 2) // [G²+1,W]
	proj := need("visual.proj", 2)                 // [W,E]
	tok := need("token_embedding.weight", 2)       // [V,Wt]
	tpos := need("positional_embedding", 2)        // [L,Wt]
	vfc := need("visual.transformer.resblocks.0.mlp.c_fc.weight", 2)
	tfc := need("transformer.resblocks.0.mlp.c_fc.weight", 2)
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("weights are not an open_clip CLIP state_dict: %s", strings.Join(errs, "; "))
	}
	grid := isqrt(vpos[0] - 1)
	if grid*grid != vpos[0]-1 {
		return Config{}, fmt.Errorf("visual.positional_embedding has %d rows, not a square grid plus the class token", vpos[0])
	}
	cfg := Config{EmbedDim: proj[1]}
	cfg.Vision.Width, cfg.Vision.PatchSize = conv[0], conv[2]
	cfg.Vision.ImageSize = grid * conv[2]
	cfg.Vision.Layers = countBlocks(shapes, "visual.transformer.resblocks.")
	cfg.Vision.Heads = headsOr(visionHeads, conv[0])
	cfg.Vision.MLPRatio = float64(vfc[0]) / float64(conv[0])
	cfg.Text.VocabSize, cfg.Text.Width = tok[0], tok[1]
	cfg.Text.ContextLength = tpos[0]
	cfg.Text.Layers = countBlocks(shapes, "transformer.resblocks.")
	cfg.Text.Heads = headsOr(textHeads, tok[1])
	cfg.Text.MLPRatio = float64(tfc[0]) / float64(tok[1])
	return cfg, cfg.Validate()
}

// headsOr returns heads, or open_clip's count for width when heads is 0.
func headsOr(heads, width int) int {
	if heads > 0 {
		return heads
	}
	return max(1, width/HeadWidth)
}

// resNetConfigFromShapes is ConfigFromShapes for a ModifiedResNet image tower.
func resNetConfigFromShapes(shapes map[string][]int, visionHeads, textHeads int) (Config, error) {
	var errs []string
	need := func(name string, rank int) []int {
		s, ok := shapes[name]
		if !ok || len(s) != rank {
			errs = append(errs, fmt.Sprintf("%s has shape %v (present %v), want rank %d", name, s, ok, rank))
			return make([]int, rank)
		}
		return s
	}
	stem := need("visual.layer1.0.conv1.weight", 4)         // [W, W, 1, 1]
	apos := need("visual.attnpool.positional_embedding", 2) // [(S/32)²+1, 32·W]
	cproj := need("visual.attnpool.c_proj.weight", 2)       // [E, 32·W]
	tok := need("token_embedding.weight", 2)
	tpos := need("positional_embedding", 2)
	tfc := need("transformer.resblocks.0.mlp.c_fc.weight", 2)
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("weights are not an open_clip ModifiedResNet CLIP state_dict: %s", strings.Join(errs, "; "))
	}
	grid := isqrt(apos[0] - 1)
	if grid*grid != apos[0]-1 {
		return Config{}, fmt.Errorf("visual.attnpool.positional_embedding has %d rows, not a square grid plus the mean token", apos[0])
	}
	cfg := Config{EmbedDim: cproj[0]}
	v := &cfg.Vision
	v.Type, v.Width, v.ImageSize = vision.TypeResNet, stem[0], grid*vision.ResNetReduction
	for i := range v.StageLayers {
		v.StageLayers[i] = countBlocks(shapes, fmt.Sprintf("visual.layer%d.", i+1))
	}
	v.Heads = headsOr(visionHeads, apos[1])
	cfg.Text.VocabSize, cfg.Text.Width = tok[0], tok[1]
	cfg.Text.ContextLength = tpos[0]
	cfg.Text.Layers = countBlocks(shapes, "transformer.resblocks.")
	cfg.Text.Heads = headsOr(textHeads, tok[1])
	cfg.Text.MLPRatio = float64(tfc[0]) / float64(tok[1])
	return cfg, cfg.Validate()
}

// countBlocks returns 1 + the largest block index i of names "<prefix><i>.".
func countBlocks(shapes map[string][]int, prefix string) int {
	n := 0
	for name := range shapes {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil && i+1 > n {
			n = i + 1
		}
	}
	return n
}

func isqrt(n int) int {
	if n < 0 {
		return 0
	}
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}
