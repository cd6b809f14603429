package fusion

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/safetensors"
)

// This file reads Hugging Face transformers' CLIPModel (model.safetensors and config.json), the
// other naming the ecosystem shares CLIP weights in. Its names map onto open_clip's one to one,
// except that attention keeps q, k and v as three projections (open_clip fuses them into
// in_proj, rows q then k then v) and the two output projections are nn.Linear weights [E, W]
// (open_clip's visual.proj and text_projection are [W, E] matrices multiplied from the right).

// isHuggingFace reports whether f holds a transformers CLIPModel's tensors.
func isHuggingFace(f *safetensors.File) bool {
	_, v := f.Info("vision_model.embeddings.patch_embedding.weight")
	_, t := f.Info("text_model.embeddings.token_embedding.weight")
	return v || t
}

// hfConfig is what clipgo reads of a CLIPModel's config.json.
type hfConfig struct {
	TextConfig   hfTowerConfig `json:"text_config"`
	VisionConfig hfTowerConfig `json:"vision_config"`
}

type hfTowerConfig struct {
	Heads int    `json:"num_attention_heads"`
	Act   string `json:"hidden_act"`
}

// maxHFConfigBytes bounds config.json (OpenAI's are about 5 KB).
const maxHFConfigBytes = 1 << 20

// readHFConfig reads config.json at path; a missing file is the zero config (the shapes and
// open_clip's rules then decide).
func readHFConfig(path string) (hfConfig, error) {
	var c hfConfig
	raw, err := fileinput.ReadFile(path, maxHFConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// hfRenames maps transformers' names to open_clip's, in order; $1 is a block index.
var hfRenames = []struct {
	from *regexp.Regexp
	to   string
}{
	{regexp.MustCompile(`^text_model\.embeddings\.token_embedding\.weight$`), "token_embedding.weight"},
	{regexp.MustCompile(`^text_model\.embeddings\.position_embedding\.weight$`), "positional_embedding"},
	{regexp.MustCompile(`^text_model\.final_layer_norm\.`), "ln_final."},
	{regexp.MustCompile(`^text_model\.encoder\.layers\.(\d+)\.`), "transformer.resblocks.$1."},
	{regexp.MustCompile(`^vision_model\.embeddings\.class_embedding$`), "visual.class_embedding"},
	{regexp.MustCompile(`^vision_model\.embeddings\.patch_embedding\.weight$`), "visual.conv1.weight"},
	{regexp.MustCompile(`^vision_model\.embeddings\.position_embedding\.weight$`), "visual.positional_embedding"},
	{regexp.MustCompile(`^vision_model\.pre_layrnorm\.`), "visual.ln_pre."}, // sic: transformers' name
	{regexp.MustCompile(`^vision_model\.post_layernorm\.`), "visual.ln_post."},
	{regexp.MustCompile(`^vision_model\.encoder\.layers\.(\d+)\.`), "visual.transformer.resblocks.$1."},
}

// hfBlockRenames maps the parts of a block's names after the block prefix.
var hfBlockRenames = strings.NewReplacer(
	"self_attn.out_proj.", "attn.out_proj.",
	"layer_norm1.", "ln_1.", "layer_norm2.", "ln_2.",
	"mlp.fc1.", "mlp.c_fc.", "mlp.fc2.", "mlp.c_proj.")

// hfSources translates a CLIPModel's tensors into clipgo's.
func hfSources(f *safetensors.File) (map[string]source, error) {
	src := map[string]source{}
	qkv := map[string][3]string{} // in_proj name -> the q, k, v tensors
	for _, t := range f.Tensors {
		name := t.Name
		switch {
		case strings.HasSuffix(name, "embeddings.position_ids"):
			continue // a buffer of 0…L−1 that older transformers saved
		case name == "logit_scale":
		case name == "visual_projection.weight", name == "text_projection.weight":
			if len(t.Shape) != 2 {
				return nil, fmt.Errorf("%s has shape %v, want [embed, width]", name, t.Shape)
			}
			to := map[string]string{"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection"}[name]
			src[to] = transposed(f, t)
			continue
		default:
			for _, r := range hfRenames {
				if r.from.MatchString(name) {
					name = r.from.ReplaceAllString(name, r.to)
					break
				}
			}
			if before, part, ok := cutQKV(name); ok {
				k := qkv[before]
				k[part] = t.Name
				qkv[before] = k
				continue
			}
			name = hfBlockRenames.Replace(name)
		}
		src[name] = source{shape: slices.Clone(t.Shape), from: fmt.Sprintf("%s %s", t.Name, t.DType),
			read: func(dst []float32) error { return readTensor(f, t.Name, dst) }}
	}
	for name, parts := range qkv {
		s, err := fused(f, name, parts)
		if err != nil {
			return nil, err
		}
		src[name] = s
	}
	return src, nil
}

// cutQKV recognises a block's "…self_attn.{q,k,v}_proj.{weight,bias}" and returns the name of
// open_clip's fused tensor and which third of it this is.
func cutQKV(name string) (fusedName string, part int, ok bool) {
	for i, p := range []string{"q", "k", "v"} {
		for _, kind := range []string{"weight", "bias"} {
			if before, ok := strings.CutSuffix(name, "self_attn."+p+"_proj."+kind); ok {
				return before + "attn.in_proj_" + kind, i, true
			}
		}
	}
	return "", 0, false
}

// fused reads q, k and v projections stacked by rows into open_clip's in_proj.
func fused(f *safetensors.File, name string, parts [3]string) (source, error) {
	var shape []int
	for _, p := range parts {
		t, ok := f.Info(p)
		if p == "" || !ok {
			return source{}, fmt.Errorf("%s: the q, k and v projections are not all there (%q)", name, parts)
		}
		if s := t.Shape; shape == nil {
			shape = s
		} else if !slices.Equal(s, shape) {
			return source{}, fmt.Errorf("%s: q, k and v projections of shapes %v and %v", name, shape, s)
		}
	}
	if len(shape) == 0 {
		return source{}, fmt.Errorf("%s: scalar projections", name)
	}
	out := slices.Clone(shape)
	out[0] *= 3
	return source{shape: out, from: strings.Join(parts[:], " + "), read: func(dst []float32) error {
		third := len(dst) / 3
		for i, p := range parts {
			if err := readTensor(f, p, dst[i*third:(i+1)*third]); err != nil {
				return err
			}
		}
		return nil
	}}, nil
}

// transposed reads an nn.Linear weight [E, W] as the [W, E] matrix open_clip keeps.
func transposed(f *safetensors.File, t safetensors.TensorInfo) source {
	e, w := t.Shape[0], t.Shape[1]
	return source{shape: []int{w, e}, from: fmt.Sprintf("%s %s (transposed)", t.Name, t.DType), read: func(dst []float32) error {
		tmp := make([]float32, e*w)
		if err := readTensor(f, t.Name, tmp); err != nil {
			return err
		}
		for i := range e {
			for j := range w {
				dst[j*e+i] = tmp[i*w+j]
			}
		}
		return nil
	}}
}
