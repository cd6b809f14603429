package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/preset"
)

// ParityOptions is one `clipgo parity` run: the interface of the PyTorch reference's
// `clip_step.py parity` (../shared/peers), so that both can be run on the same files.
type ParityOptions struct {
	Weights string // open_clip state_dict as safetensors (e.g. clip_step.py export-random)
	Inputs  string // `images` F32 [B,3,S,S], `texts` I32/I64 [B,L]
	Out     string // written: features, logits, loss, grad.<name>
	// Head counts are not in the shapes: flags, else the weights' metadata
	// (vision_heads, text_heads), else the preset's.
	VisionHeads, TextHeads int
	Preset                 string
	// Reference, when set, is the reference's output for the same files; every tensor is
	// compared and the run fails beyond the tolerances.
	Reference string
	// Tolerances: features, logits and loss (TolOutputs), gradients (TolGrads), as errors
	// relative to each reference tensor's largest magnitude.
	TolOutputs, TolGrads float64
}

// ParityReport is one line per compared tensor and the verdict.
type ParityReport struct {
	Config     fusion.Config      `json:"config"`
	Loss       float32            `json:"loss"`
	Errors     map[string]float64 `json:"rel_errors,omitempty"`
	WorstOut   string             `json:"worst_output,omitempty"`
	WorstGrad  string             `json:"worst_grad,omitempty"`
	MaxOutErr  float64            `json:"max_output_rel_error"`
	MaxGradErr float64            `json:"max_grad_rel_error"`
	Pass       bool               `json:"pass"`
}

// Parity computes features, logits, loss and every parameter's gradient for one batch with
// clipgo's model, writes them under the reference's names, and compares them with the
// reference's output when one is given.
func Parity(opts ParityOptions, w io.Writer) (ParityReport, error) {
	var rep ParityReport
	wf, err := safetensors.OpenFile(opts.Weights)
	if err != nil {
		return rep, fmt.Errorf("parity --weights: %w", err)
	}
	defer wf.Close()
	shapes := map[string][]int{}
	for _, t := range wf.Tensors {
		shapes[t.Name] = t.Shape
	}
	vh, th, err := parityHeads(opts, wf.Metadata)
	if err != nil {
		return rep, err
	}
	cfg, err := fusion.ConfigFromShapes(shapes, vh, th)
	if err != nil {
		return rep, fmt.Errorf("parity --weights %s: %w", opts.Weights, err)
	}
	rep.Config = cfg

	in, err := safetensors.OpenFile(opts.Inputs)
	if err != nil {
		return rep, fmt.Errorf("parity --inputs: %w", err)
	}
	defer in.Close()
	images, err := in.Float32s("images")
	if err != nil {
		return rep, fmt.Errorf("parity --inputs %s: %w", opts.Inputs, err)
	}
	ids, err := in.Int64s("texts")
	if err != nil {
		return rep, fmt.Errorf("parity --inputs %s: %w", opts.Inputs, err)
	}
	S, L := cfg.Vision.ImageSize, cfg.Text.ContextLength
	B := len(images) / (3 * S * S)
	if B < 1 || len(images) != B*3*S*S || len(ids) != B*L {
		return rep, fmt.Errorf("parity --inputs %s: images hold %d values and texts %d; want [B,3,%d,%d] and [B,%d]", opts.Inputs, len(images), len(ids), S, S, L)
	}
	tokens := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(cfg.Text.VocabSize) {
			return rep, fmt.Errorf("parity --inputs %s: texts[%d] = %d is outside [0, %d)", opts.Inputs, i, id, cfg.Text.VocabSize)
		}
		tokens[i] = int32(id)
	}

	model, err := fusion.New(cfg, B, 0)
	if err != nil {
		return rep, err
	}
	defer model.Close()
	var missing []string
	for _, p := range model.Params() {
		if _, ok := shapes[p.Name]; !ok {
			missing = append(missing, p.Name)
			continue
		}
		v, err := wf.Float32s(p.Name)
		if err != nil {
			return rep, fmt.Errorf("parity --weights: %w", err)
		}
		if err := model.SetParam(p.Name, v); err != nil {
			return rep, fmt.Errorf("parity --weights: %w", err)
		}
		delete(shapes, p.Name)
	}
	if len(missing) > 0 || len(shapes) > 0 {
		extra := slices.Sorted(maps.Keys(shapes))
		return rep, fmt.Errorf("parity --weights %s: missing %v, unexpected %v", opts.Weights, missing, extra)
	}
	loss, err := model.Step(images, tokens)
	if err != nil {
		return rep, err
	}
	rep.Loss = loss
	outs := model.Last()
	E := cfg.EmbedDim
	tensors := []safetensors.Tensor{
		{Name: "image_features", DType: safetensors.F32, Shape: []int{B, E}, Data: outs.ImageFeatures},
		{Name: "text_features", DType: safetensors.F32, Shape: []int{B, E}, Data: outs.TextFeatures},
		{Name: "logits_per_image", DType: safetensors.F32, Shape: []int{B, B}, Data: outs.LogitsPerImage},
		{Name: "loss", DType: safetensors.F32, Shape: []int{}, Data: []float32{loss}},
	}
	for _, p := range model.Params() {
		tensors = append(tensors, safetensors.Tensor{Name: "grad." + p.Name, DType: safetensors.F32, Shape: p.Shape, Data: p.Grad})
	}
	cfgJSON, _ := json.Marshal(cfg)
	meta := safetensors.Metadata{{Key: "compute_dtype", Value: "float32"}, {Key: "config", Value: string(cfgJSON)}}
	if opts.Out != "" {
		raw, err := safetensors.Encode(tensors, meta)
		if err != nil {
			return rep, err
		}
		if err := atomicfile.WriteFile(opts.Out, raw); err != nil {
			return rep, fmt.Errorf("parity --out: %w", err)
		}
	}
	if opts.Reference != "" {
		if err := compareParity(&rep, tensors, opts); err != nil {
			return rep, err
		}
	}
	return rep, json.NewEncoder(w).Encode(rep)
}

// compareParity fills rep's errors against the reference output file.
func compareParity(rep *ParityReport, tensors []safetensors.Tensor, opts ParityOptions) error {
	ref, err := safetensors.OpenFile(opts.Reference)
	if err != nil {
		return fmt.Errorf("parity --reference: %w", err)
	}
	defer ref.Close()
	rep.Errors = map[string]float64{}
	for _, t := range tensors {
		want, err := ref.Float32s(t.Name)
		if err != nil {
			return fmt.Errorf("parity --reference %s: %w", opts.Reference, err)
		}
		got := t.Data.([]float32)
		if len(got) != len(want) {
			return fmt.Errorf("parity: %s has %d values, the reference %d", t.Name, len(got), len(want))
		}
		e := relativeError(got, want)
		rep.Errors[t.Name] = e
		if strings.HasPrefix(t.Name, "grad.") {
			if e > rep.MaxGradErr || math.IsNaN(e) {
				rep.MaxGradErr, rep.WorstGrad = e, t.Name
			}
		} else if e > rep.MaxOutErr || math.IsNaN(e) {
			rep.MaxOutErr, rep.WorstOut = e, t.Name
		}
	}
	rep.Pass = rep.MaxOutErr <= opts.TolOutputs && rep.MaxGradErr <= opts.TolGrads
	return nil
}

// relativeError is max |got − want| / max |want|: the error relative to the tensor's scale.
func relativeError(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = math.Max(s, math.Abs(float64(want[i])))
	}
	if math.IsNaN(d) {
		return math.NaN()
	}
	return d / math.Max(s, 1e-30)
}

// parityHeads picks the head counts: flags, then the weights' metadata, then the preset.
func parityHeads(opts ParityOptions, meta safetensors.Metadata) (vision, text int, err error) {
	vision, text = opts.VisionHeads, opts.TextHeads
	fromMeta := func(key string, dst *int) error {
		if *dst > 0 {
			return nil
		}
		if s, ok := meta.Get(key); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("parity --weights: metadata %s=%q is not a positive integer", key, s)
			}
			*dst = n
		}
		return nil
	}
	if err := fromMeta("vision_heads", &vision); err != nil {
		return 0, 0, err
	}
	if err := fromMeta("text_heads", &text); err != nil {
		return 0, 0, err
	}
	if (vision == 0 || text == 0) && opts.Preset != "" {
		var p fusion.Config
		if err := preset.Load(opts.Preset, &p); err != nil {
			return 0, 0, err
		}
		vision, text = cmp.Or(max(vision, 0), p.Vision.Heads), cmp.Or(max(text, 0), p.Text.Heads)
	}
	if vision == 0 || text == 0 {
		return 0, 0, fmt.Errorf("parity: head counts are not in the weights' metadata: give --vision-heads and --text-heads, or --preset")
	}
	return vision, text, nil
}
