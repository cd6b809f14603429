// Package weights writes a CLIP model's weights in the namings the ecosystem reads them in:
// clipgo's checkpoint, open_clip's state dict, and Hugging Face transformers' CLIPModel.
// fusion.ReadWeights reads all three back, so a model crosses between the tools either way.
package weights

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
)

// Format names a naming of the weights.
type Format string

const (
	// Clipgo is a clipgo checkpoint: open_clip's names, the model config in the metadata.
	Clipgo Format = "clipgo"
	// OpenCLIP is open_clip's state dict (what torch.save(model.state_dict()) holds, as
	// safetensors): it loads into open_clip's CLIP with strict=True. The head counts go in the
	// metadata (vision_heads, text_heads), which torch ignores; the activation is not recorded
	// anywhere (open_clip's "-quickgelu" model names say it).
	OpenCLIP Format = "open_clip"
	// HuggingFace is transformers' CLIPModel: a directory with model.safetensors and the
	// config.json that sizes it (ViT towers only; transformers has no ModifiedResNet CLIP).
	HuggingFace Format = "huggingface"
)

// Formats lists the formats for help texts and errors.
var Formats = []Format{Clipgo, OpenCLIP, HuggingFace}

// Write writes the weights of a model of cfg (fusion.WeightsOf(cfg): names, shapes, order) to
// out in the given format and float type (F32, F16 or BF16, rounded as torch rounds). For
// HuggingFace, out is a directory; otherwise a .safetensors file. Files are replaced whole or
// not at all.
func Write(out string, cfg fusion.Config, params []*nn.Param, format Format, dtype safetensors.DType) error {
	if dtype != safetensors.F32 && dtype != safetensors.F16 && dtype != safetensors.BF16 {
		return fmt.Errorf("weights: dtype %s: want F32, F16 or BF16", dtype)
	}
	if format != Clipgo { // the training-only head stays in clipgo's checkpoints
		cfg, params = fusion.InferenceWeights(cfg, params)
	}
	if err := checkParams(cfg, params); err != nil {
		return err
	}
	switch format {
	case Clipgo, OpenCLIP:
		meta := safetensors.Metadata{{Key: "format", Value: "pt"},
			{Key: fusion.VisionHeadsKey, Value: strconv.Itoa(cfg.Vision.Heads)},
			{Key: fusion.TextHeadsKey, Value: strconv.Itoa(cfg.Text.Heads)}}
		if format == Clipgo {
			raw, err := json.Marshal(cfg)
			if err != nil {
				return err
			}
			meta = append(meta, safetensors.Metadata{{Key: fusion.ConfigKey, Value: string(raw)}}...)
		}
		tensors := make([]safetensors.Tensor, len(params))
		for i, p := range params {
			tensors[i] = tensor(p.Name, p.Shape, p.Value, dtype)
		}
		return writeFile(out, tensors, meta)
	case HuggingFace:
		return writeHuggingFace(out, cfg, params, dtype)
	}
	return fmt.Errorf("weights: format %q: want one of %v", format, Formats)
}

// checkParams checks params against the model cfg sizes, so that nothing writes a file the
// readers would refuse.
func checkParams(cfg fusion.Config, params []*nn.Param) error {
	want, err := fusion.WeightsOf(cfg)
	if err != nil {
		return err
	}
	if len(want) != len(params) {
		return fmt.Errorf("weights: %d tensors for a model of %d", len(params), len(want))
	}
	for i, w := range want {
		p := params[i]
		if p.Name != w.Name || len(p.Shape) != len(w.Shape) || len(p.Value) != w.Size() {
			return fmt.Errorf("weights: tensor %d is %s %v, the model's is %s %v", i, p.Name, p.Shape, w.Name, w.Shape)
		}
	}
	return nil
}

// tensor encodes one tensor: float32 values in dtype, except batch norm's step counter, which
// torch keeps as int64.
func tensor(name string, shape []int, v []float32, dtype safetensors.DType) safetensors.Tensor {
	if strings.HasSuffix(name, "num_batches_tracked") {
		n := make([]int64, len(v))
		for i, x := range v {
			n[i] = int64(x)
		}
		return safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: shape, Data: n}
	}
	switch dtype {
	case safetensors.F16, safetensors.BF16:
		conv := safetensors.Float32ToF16
		if dtype == safetensors.BF16 {
			conv = safetensors.Float32ToBF16
		}
		b := make([]byte, 2*len(v))
		for i, x := range v {
			h := conv(x)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
		return safetensors.Tensor{Name: name, DType: dtype, Shape: shape, Data: b}
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: v}
}

// writeFile writes a safetensors file atomically.
func writeFile(path string, tensors []safetensors.Tensor, meta safetensors.Metadata) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err := safetensors.Write(f, tensors, meta); err != nil {
		f.Abort()
		return fmt.Errorf("weights: %s: %w", path, err)
	}
	return f.Commit()
}

// openCLIPToHF renames open_clip's tensors to transformers' (the reverse of fusion's reader);
// $1 is a block index. Names it does not list are a block's (hfBlock) or the projections.
var openCLIPToHF = []struct {
	from *regexp.Regexp
	to   string
}{
	{regexp.MustCompile(`^token_embedding\.weight$`), "text_model.embeddings.token_embedding.weight"},
	{regexp.MustCompile(`^positional_embedding$`), "text_model.embeddings.position_embedding.weight"},
	{regexp.MustCompile(`^ln_final\.`), "text_model.final_layer_norm."},
	{regexp.MustCompile(`^transformer\.resblocks\.(\d+)\.`), "text_model.encoder.layers.$1."},
	{regexp.MustCompile(`^visual\.class_embedding$`), "vision_model.embeddings.class_embedding"},
	{regexp.MustCompile(`^visual\.conv1\.weight$`), "vision_model.embeddings.patch_embedding.weight"},
	{regexp.MustCompile(`^visual\.positional_embedding$`), "vision_model.embeddings.position_embedding.weight"},
	{regexp.MustCompile(`^visual\.ln_pre\.`), "vision_model.pre_layrnorm."}, // sic: transformers' name
	{regexp.MustCompile(`^visual\.ln_post\.`), "vision_model.post_layernorm."},
	{regexp.MustCompile(`^visual\.transformer\.resblocks\.(\d+)\.`), "vision_model.encoder.layers.$1."},
}

// hfBlock renames the parts of a block's names after its prefix.
var hfBlock = strings.NewReplacer(
	"attn.out_proj.", "self_attn.out_proj.",
	"ln_1.", "layer_norm1.", "ln_2.", "layer_norm2.",
	"mlp.c_fc.", "mlp.fc1.", "mlp.c_proj.", "mlp.fc2.")

// writeHuggingFace writes dir/model.safetensors and dir/config.json.
func writeHuggingFace(dir string, cfg fusion.Config, params []*nn.Param, dtype safetensors.DType) error {
	switch {
	case cfg.Vision.Type == vision.TypeResNet:
		return fmt.Errorf("weights: transformers' CLIPModel has no ModifiedResNet image tower: write open_clip's naming instead")
	case cfg.Loss == fusion.LossSigLIP:
		return fmt.Errorf("weights: a SigLIP model (logit_bias) is not a transformers CLIPModel: write open_clip's naming instead")
	}
	var tensors []safetensors.Tensor
	for _, p := range params {
		name, shape, v := p.Name, p.Shape, p.Value
		switch name {
		case "visual.proj", "text_projection": // [W, E] multiplied from the right -> nn.Linear [E, W]
			to := map[string]string{"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}[name]
			tensors = append(tensors, tensor(to, []int{shape[1], shape[0]}, transpose(v, shape[0], shape[1]), dtype))
			continue
		case fusion.LogitScaleName:
			tensors = append(tensors, tensor(name, shape, v, dtype))
			continue
		}
		renamed := name
		for _, r := range openCLIPToHF {
			if r.from.MatchString(name) {
				renamed = r.from.ReplaceAllString(name, r.to)
				break
			}
		}
		if renamed == name {
			return fmt.Errorf("weights: no transformers name for %s", name)
		}
		prefix, rest, inBlock := cutBlock(renamed)
		if !inBlock {
			tensors = append(tensors, tensor(renamed, shape, v, dtype))
			continue
		}
		if kind, ok := strings.CutPrefix(rest, "attn.in_proj_"); ok { // rows q, k, v
			third := len(v) / 3
			part := append([]int{shape[0] / 3}, shape[1:]...)
			for i, qkv := range []string{"q", "k", "v"} {
				tensors = append(tensors, tensor(prefix+"self_attn."+qkv+"_proj."+kind, part, v[i*third:(i+1)*third], dtype))
			}
			continue
		}
		tensors = append(tensors, tensor(prefix+hfBlock.Replace(rest), shape, v, dtype))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	raw, err := json.MarshalIndent(hfConfigOf(cfg, dtype), "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "model.safetensors"), tensors, safetensors.Metadata{{Key: "format", Value: "pt"}}); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(raw, '\n'))
}

// cutBlock splits "…encoder.layers.N.rest" into its prefix (through "N.") and rest.
func cutBlock(name string) (prefix, rest string, ok bool) {
	i := strings.Index(name, ".encoder.layers.")
	if i < 0 {
		return "", "", false
	}
	j := i + len(".encoder.layers.")
	k := strings.IndexByte(name[j:], '.')
	if k < 0 {
		return "", "", false
	}
	return name[:j+k+1], name[j+k+1:], true
}

// transpose returns the [c, r] transpose of a row-major [r, c] matrix.
func transpose(v []float32, r, c int) []float32 {
	out := make([]float32, len(v))
	for i := range r {
		for j := range c {
			out[j*r+i] = v[i*c+j]
		}
	}
	return out
}

// hfConfigOf is the config.json of transformers' CLIPConfig for cfg: the sizes of both towers,
// their activation and OpenAI's token ids.
func hfConfigOf(cfg fusion.Config, dtype safetensors.DType) map[string]any {
	act := "gelu"
	if cfg.QuickGELU {
		act = "quick_gelu"
	}
	torchDType := map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[dtype]
	t, v := cfg.Text, cfg.Vision
	return map[string]any{
		"architectures":          []string{"CLIPModel"},
		"model_type":             "clip",
		"projection_dim":         cfg.EmbedDim,
		"logit_scale_init_value": math.Round(fusion.InitLogitScale*1e4) / 1e4,
		"torch_dtype":            torchDType,
		"text_config": map[string]any{
			"model_type":              "clip_text_model",
			"hidden_size":             t.Width,
			"intermediate_size":       int(math.Round(float64(t.Width) * t.MLPRatio)),
			"num_attention_heads":     t.Heads,
			"num_hidden_layers":       t.Layers,
			"max_position_embeddings": t.ContextLength,
			"vocab_size":              t.VocabSize,
			"hidden_act":              act,
			"layer_norm_eps":          1e-5,
			"projection_dim":          cfg.EmbedDim,
			"bos_token_id":            49406,
			"eos_token_id":            49407,
			"pad_token_id":            1,
		},
		"vision_config": map[string]any{
			"model_type":          "clip_vision_model",
			"hidden_size":         v.Width,
			"intermediate_size":   int(math.Round(float64(v.Width) * v.MLPRatio)),
			"num_attention_heads": v.Heads,
			"num_hidden_layers":   v.Layers,
			"image_size":          v.ImageSize,
			"patch_size":          v.PatchSize,
			"num_channels":        3,
			"hidden_act":          act,
			"layer_norm_eps":      1e-5,
			"projection_dim":      cfg.EmbedDim,
		},
	}
}
