package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/runlog"
)

// initWeights is what a new run started from pretrained weights (Config.Init) read.
type initWeights struct {
	path   string // the weights file read (a directory's model.safetensors or newest checkpoint)
	sha256 string
	params []*nn.Param // by name; copied into the model once it is built
}

// InitWeightsPath returns the weights file that init names: the file itself, or for a
// directory its Hugging Face model.safetensors (config.json beside it) or, for a clipgo run
// directory, its newest checkpoint.
func InitWeightsPath(weights string) (string, error) {
	fi, err := os.Stat(weights)
	if err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	if !fi.IsDir() {
		return weights, nil
	}
	if hf := filepath.Join(weights, evalmodel.HFWeights); fileExists(hf) {
		return hf, nil
	}
	path, err := checkpoint.Latest(weights)
	if err != nil {
		return "", fmt.Errorf("init %s: a directory without %s (a Hugging Face model) or a checkpoint (a clipgo run): %w",
			weights, evalmodel.HFWeights, err)
	}
	return path, nil
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// resolveInit gives a run with cfg.Init its model: a new run reads the weights (their config
// with the recipe's model keys laid over it, and the tensors, kept for loading once the model
// is built); a resume takes the model of the checkpoint it resumes and never reads the
// weights again. Data parallel, rank 0 resolves and sends the config to the others.
func (t *trainer) resolveInit() error {
	if t.cfg.Init == "" {
		return nil
	}
	var model fusion.Config
	if t.lead {
		var err error
		if model, err = t.initModel(); err != nil {
			return err
		}
	}
	if t.comm.Size() > 1 {
		var err error
		if model, err = broadcastModel(t.comm, model, t.lead); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	t.cfg.Model = model
	return nil
}

// initModel is resolveInit on rank 0.
func (t *trainer) initModel() (fusion.Config, error) {
	cfg, opts := t.cfg, t.opts
	if opts.RunDir == "" {
		return fusion.Config{}, errors.New("pretrain: --out RUN_DIR is required")
	}
	resume := opts.Resume
	if resume == "auto" {
		if steps, err := checkpoint.Steps(opts.RunDir); err != nil {
			return fusion.Config{}, fmt.Errorf("pretrain: %w", err)
		} else if len(steps) == 0 {
			resume = ""
		}
	}
	if resume != "" {
		// The run's checkpoint holds the weights now: its model, and the recipe's keys over it
		// (a change is then refused by the resume's check, naming it).
		path, err := resolveResume(Options{RunDir: opts.RunDir, Resume: resume})
		if err != nil {
			return fusion.Config{}, err
		}
		saved, err := fusion.ReadConfig(path)
		if err != nil {
			return fusion.Config{}, fmt.Errorf("resume: %w", err)
		}
		return overlayModel(saved, func() ([]*nn.Param, error) { return fusion.WeightsOf(saved) }, cfg, "the checkpoint "+path)
	}
	path, err := InitWeightsPath(cfg.Init)
	if err != nil {
		return fusion.Config{}, err
	}
	start := time.Now()
	wcfg, params, err := fusion.ReadWeights(path, cfg.Model.QuickGELU)
	if err != nil {
		return fusion.Config{}, fmt.Errorf("init: %w", err)
	}
	model, err := overlayModel(wcfg, func() ([]*nn.Param, error) { return params, nil }, cfg, "the weights "+path)
	if err != nil {
		return fusion.Config{}, err
	}
	sum, err := evalmodel.FileSHA256(path)
	if err != nil {
		return fusion.Config{}, fmt.Errorf("init: %w", err)
	}
	t.init = &initWeights{path: path, sha256: sum, params: params}
	t.log.Info("init: starting from pretrained weights", "weights", path, "sha256", sum,
		"model", evalmodel.Describe(path, model), "quick_gelu", model.QuickGELU, "loss", model.Loss, "read_s", time.Since(start).Seconds())
	return model, nil
}

// overlayModel lays the model keys the recipe gave (cfg.modelKeys, values in cfg.Model) over
// base, the config of weights whose tensors params returns (asked only when a key changes
// the model). A key may change the model only as
// far as the tensors still fit it exactly (names and shapes: quick_gelu, head counts, the loss
// settings its tensors allow); any other is refused, naming it with both values.
func overlayModel(base fusion.Config, params func() ([]*nn.Param, error), cfg Config, what string) (fusion.Config, error) {
	merged := base
	var changed []string
	for _, key := range cfg.modelKeys {
		from, ok := fieldAt(reflect.ValueOf(&cfg.Model).Elem(), key)
		if !ok {
			continue // a section given as a whole (model.triplet: {}) has its leaves elsewhere
		}
		to, _ := fieldAt(reflect.ValueOf(&merged).Elem(), key)
		if !reflect.DeepEqual(from.Interface(), to.Interface()) {
			to.Set(from)
			changed = append(changed, key)
		}
	}
	if len(changed) == 0 {
		return merged, nil
	}
	ps, err := params()
	if err != nil {
		return base, fmt.Errorf("init: %s: %w", what, err)
	}
	want := shapesOf(ps)
	fits := func(c fusion.Config) (bool, error) {
		ps, err := fusion.WeightsOf(c)
		if err != nil {
			return false, err
		}
		return maps.Equal(shapesOf(ps), want), nil
	}
	ok, err := fits(merged)
	if err != nil {
		return base, fmt.Errorf("init: the recipe's model keys (%s) over %s: %w", strings.Join(prefixed(changed), ", "), what, err)
	}
	if ok {
		return merged, nil
	}
	// Name the keys that break the fit on their own (else all that changed).
	var bad []string
	for _, key := range changed {
		one := base
		to, _ := fieldAt(reflect.ValueOf(&one).Elem(), key)
		from, _ := fieldAt(reflect.ValueOf(&cfg.Model).Elem(), key)
		to.Set(from)
		if ok, err := fits(one); err != nil || !ok {
			old, _ := fieldAt(reflect.ValueOf(&base).Elem(), key)
			bad = append(bad, fmt.Sprintf("model.%s: %s in the weights, %s in the recipe", key, show(old), show(from)))
		}
	}
	if len(bad) == 0 {
		bad = prefixed(changed)
	}
	return base, fmt.Errorf("init: the recipe's model section changes the shapes of %s, which then do not load: %s; with init the model comes from the weights, and model.* may only set keys that keep their tensors (quick_gelu, heads, loss settings they hold): leave these out",
		what, strings.Join(bad, "; "))
}

// show formats a config value for an error: strings quoted (an empty model.loss is clip's).
func show(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}

func prefixed(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "model." + k
	}
	return out
}

// shapesOf maps parameter names to their shapes (a scalar as []).
func shapesOf(params []*nn.Param) map[string]string {
	m := make(map[string]string, len(params))
	for _, p := range params {
		m[p.Name] = fmt.Sprint(p.Shape)
	}
	return m
}

// fieldAt finds the field of struct v at a dotted key of yaml names (a leaf, not a section).
func fieldAt(v reflect.Value, key string) (reflect.Value, bool) {
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		t, found := v.Type(), false
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if f.IsExported() && name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, v.Kind() != reflect.Struct
}

// loadInit copies the init weights into the built model's parameters, checking every name and
// shape: the model is the weights' (resolveInit), so any difference is a bug to report.
func (t *trainer) loadInit() error {
	if t.init == nil {
		return nil
	}
	byName := make(map[string]*nn.Param, len(t.init.params))
	for _, p := range t.init.params {
		byName[p.Name] = p
	}
	if len(byName) != len(t.params) {
		return fmt.Errorf("init %s: %d tensors for a model of %d parameters", t.init.path, len(byName), len(t.params))
	}
	for _, p := range t.params {
		src, ok := byName[p.Name]
		if !ok || len(src.Value) != len(p.Value) || !slices.Equal(src.Shape, p.Shape) {
			return fmt.Errorf("init %s: the model's parameter %s %v has no tensor of that shape in the weights", t.init.path, p.Name, p.Shape)
		}
		copy(p.Value, src.Value)
	}
	t.init.params = nil // the model holds them now
	return nil
}

// recordInit notes in RUN/config-history.jsonl which weights the run started from: the path
// (config.yaml keeps it too) and the SHA-256 of the file read.
func (t *trainer) recordInit() error {
	if t.init == nil || !t.lead {
		return nil
	}
	rec := runlog.Change{Time: time.Now().UTC().Format(time.RFC3339), Step: 0, Key: "init", New: t.init.path,
		Reason: "initialised from pretrained weights, sha256 " + t.init.sha256}
	if err := runlog.AppendChanges(filepath.Join(t.opts.RunDir, runlog.HistoryName), []runlog.Change{rec}); err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	return nil
}

// broadcastModel sends rank 0's model config to every rank (as JSON bytes in int64s).
func broadcastModel(c interface {
	BroadcastInt64([]int64, int) error
}, model fusion.Config, lead bool) (fusion.Config, error) {
	var raw []byte
	if lead {
		var err error
		if raw, err = json.Marshal(model); err != nil {
			return model, err
		}
	}
	n := []int64{int64(len(raw))}
	if err := c.BroadcastInt64(n, 0); err != nil {
		return model, err
	}
	if n[0] < 0 || n[0] > 1<<20 {
		return model, fmt.Errorf("rank 0 sent a model config of %d bytes", n[0])
	}
	buf := make([]int64, n[0])
	for i, b := range raw {
		buf[i] = int64(b)
	}
	if err := c.BroadcastInt64(buf, 0); err != nil {
		return model, err
	}
	if lead {
		return model, nil
	}
	raw = make([]byte, len(buf))
	for i, b := range buf {
		raw[i] = byte(b)
	}
	var out fusion.Config
	if err := json.Unmarshal(raw, &out); err != nil {
		return model, fmt.Errorf("rank 0's model config: %w", err)
	}
	return out, nil
}
