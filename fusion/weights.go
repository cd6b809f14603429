package fusion

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
)

// ModulePrefix is what torch's DataParallel and DistributedDataParallel put before every name
// of a state dict saved from the wrapped model (open_clip's training checkpoints have it).
const ModulePrefix = "module."

// Metadata keys of a state dict that say what its shapes cannot: the head counts
// (../shared/peers/clip_step.py export-random writes them).
const (
	VisionHeadsKey = "vision_heads"
	TextHeadsKey   = "text_heads"
)

// ReadWeights reads a model from a safetensors file in the namings the CLIP ecosystem writes,
// and returns its config and its weights under clipgo's (open_clip's) names, in the model's
// order:
//   - a clipgo checkpoint, whose metadata records the config;
//   - an open_clip or OpenAI-converted state dict, with or without the "module." prefix, whose
//     sizes come from the tensor shapes (ViT or ModifiedResNet), the head counts from the
//     vision_heads/text_heads metadata or else open_clip's rule (head width 64), the loss from
//     the tensors (a logit_bias means SigLIP), and the activation from quickGELU, which a
//     state dict does not record (OpenAI's models use QuickGELU);
//   - a Hugging Face CLIPModel (model.safetensors, transformers' names: q/k/v projections
//     fused into open_clip's in_proj, projections transposed), its head counts and activation
//     from the config.json beside it when there is one (hidden_act quick_gelu).
//
// Tensors may be F32, F16, BF16 or F64 (converted to float32), logit_scale of shape [] or [1],
// and batch norm's num_batches_tracked I64 as torch writes it. Missing, unexpected and
// mis-shaped tensors are all listed in one error.
func ReadWeights(path string, quickGELU bool) (Config, []*nn.Param, error) {
	f, err := safetensors.OpenFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	fail := func(err error) (Config, []*nn.Param, error) {
		return Config{}, nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	src, err := sourcesOf(f)
	if err != nil {
		return fail(err)
	}
	shapes := map[string][]int{}
	for name, sc := range src {
		shapes[name] = sc.shape
	}
	var cfg Config
	if raw, ok := f.Metadata.Get(ConfigKey); ok {
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return fail(fmt.Errorf("model config in the metadata: %w", err))
		}
	} else {
		heads := func(key string) (int, error) {
			v, ok := f.Metadata.Get(key)
			if !ok {
				return 0, nil // the rule
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("metadata %s = %q is not a head count", key, v)
			}
			return n, nil
		}
		vh, err := heads(VisionHeadsKey)
		if err != nil {
			return fail(err)
		}
		th, err := heads(TextHeadsKey)
		if err != nil {
			return fail(err)
		}
		if isHuggingFace(f) {
			hf, err := readHFConfig(filepath.Join(filepath.Dir(path), "config.json"))
			if err != nil {
				return fail(err)
			}
			vh, th = cmp.Or(hf.VisionConfig.Heads, vh), cmp.Or(hf.TextConfig.Heads, th)
			quickGELU = quickGELU || hf.TextConfig.Act == "quick_gelu" || hf.VisionConfig.Act == "quick_gelu"
		}
		if cfg, err = ConfigFromShapes(shapes, vh, th); err != nil {
			return fail(err)
		}
		cfg.QuickGELU = quickGELU
		if _, ok := shapes[LogitBiasName]; ok {
			cfg.Loss = LossSigLIP
		}
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	params, err := WeightsOf(cfg)
	if err != nil {
		return fail(err)
	}
	var problems []string
	want := map[string]bool{}
	for _, p := range params {
		want[p.Name] = true
		s, ok := shapes[p.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s %v", p.Name, p.Shape))
		case !sameShape(s, p.Shape):
			problems = append(problems, fmt.Sprintf("mis-shaped %s: %v, want %v", p.Name, s, p.Shape))
		}
	}
	for name, sc := range src {
		if !want[name] {
			problems = append(problems, fmt.Sprintf("unexpected %s %v", sc.from, sc.shape))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fail(fmt.Errorf("%d tensors do not match a %s model: %s", len(problems), Describe(cfg), strings.Join(problems, "; ")))
	}
	for _, p := range params {
		if err := src[p.Name].read(p.Value); err != nil {
			return fail(err)
		}
	}
	return cfg, params, nil
}

// source is how one clipgo tensor comes out of a file: its shape, what it is made of (for
// errors), and how to read it.
type source struct {
	shape []int
	from  string
	read  func(dst []float32) error
}

// sourcesOf maps the clipgo names of a file's tensors to their sources: one tensor each (the
// "module." prefix cut), or for a Hugging Face CLIPModel, its names translated.
func sourcesOf(f *safetensors.File) (map[string]source, error) {
	if isHuggingFace(f) {
		return hfSources(f)
	}
	src := map[string]source{}
	prefixed := len(f.Tensors) > 0 && strings.HasPrefix(f.Tensors[0].Name, ModulePrefix)
	for _, t := range f.Tensors {
		name, ok := strings.CutPrefix(t.Name, ModulePrefix)
		if ok != prefixed {
			return nil, fmt.Errorf("some tensor names start with %q and some do not (%s)", ModulePrefix, t.Name)
		}
		src[name] = source{shape: slices.Clone(t.Shape), from: fmt.Sprintf("%s %s", t.Name, t.DType),
			read: func(dst []float32) error { return readTensor(f, t.Name, dst) }}
	}
	return src, nil
}

// sameShape compares a file's shape with a parameter's, taking a scalar as [] or [1].
func sameShape(file, param []int) bool {
	if len(param) == 0 {
		return len(file) == 0 || (len(file) == 1 && file[0] == 1)
	}
	return slices.Equal(file, param)
}

// readTensor reads tensor name as float32 into dst: a float type converted, an integer one
// (batch norm's num_batches_tracked) as its value.
func readTensor(f *safetensors.File, name string, dst []float32) error {
	t, _ := f.Info(name)
	switch t.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64:
		return f.ReadFloat32(name, dst)
	}
	if !strings.HasSuffix(name, "num_batches_tracked") {
		return fmt.Errorf("tensor %s is %s, want a float type", name, t.DType)
	}
	v, err := f.Int64s(name)
	if err != nil {
		return err
	}
	for i, x := range v {
		dst[i] = float32(x)
	}
	return nil
}

// Describe names a model's image-tower layout for errors and summaries: "ViT-32/224 w768 L12"
// or "RN[3 4 6 3] w64 224px".
func Describe(cfg Config) string {
	v := cfg.Vision
	if v.Type == vision.TypeResNet {
		return fmt.Sprintf("RN%v w%d %dpx", [4]int(v.StageLayers), v.Width, v.ImageSize)
	}
	return fmt.Sprintf("ViT-%d/%d w%d L%d", v.PatchSize, v.ImageSize, v.Width, v.Layers)
}
