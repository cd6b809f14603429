// Package checkpoint saves and resumes training runs. A checkpoint of step N in run directory
// <run> is two safetensors files:
//
//	<run>/step-00000N.safetensors        every nn.Param as F32 under its open_clip name, with the
//	                                     model config, step, epoch, data position and RNG state
//	                                     in __metadata__, so that open_clip and the PyTorch
//	                                     reference load it as a state_dict
//	<run>/step-00000N.optim.safetensors  the optimiser state (AdamW's "exp_avg.<name>",
//	                                     "exp_avg_sq.<name>", "step"), F32
//
// Each file is written atomically (temporary file in the same directory, fsync, rename, fsync
// of the directory). The optimiser file is written first and the model file last, and the model
// file records the SHA-256 of its optimiser file: a pair is complete only when both exist, read,
// and agree, so a crash or a full disk at any point leaves the previous checkpoint the one that
// Latest finds.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
)

// FormatVersion is the version of the checkpoint layout Save writes; Load reads versions 1 to
// FormatVersion.
const FormatVersion = 1

// Metadata keys and format tags of the two files.
const (
	modelFormat = "clipgo-checkpoint"
	optimFormat = "clipgo-optim"
	keyFormat   = "format"
	keyVersion  = "format_version"
	keyConfig   = "config"
	keyStep     = "step"
	keyEpoch    = "epoch"
	keySample   = "sample"
	keySeed     = "seed"
	keyRNG      = "rng"
	keyStreams  = "data_streams"
	keyOptimSHA = "optim_sha256"
)

// Meta is what a checkpoint records beside the weights to resume a run exactly.
type Meta struct {
	Version int    // checkpoint format version: set by Save, as read by Load
	Config  string // model config as JSON (the caller marshals fusion.Config); may be empty
	Step    int64  // optimiser steps taken; set by Save from its step argument
	Epoch   int64  // epoch in progress
	Sample  int64  // samples of Epoch already consumed: where the data stream resumes
	Seed    int64  // the run's seed
	RNG     string // serialised RNG state, opaque to this package
	// Streams are the positions of every data stream of a run whose batches are drawn from
	// several (a data-parallel run: one or more per rank), in stream order; Epoch and Sample
	// repeat stream 0's. Nil for a run with one stream.
	Streams []StreamPos
}

// StreamPos is where one data stream stands: the epoch in progress and the samples of it
// consumed.
type StreamPos struct {
	Epoch  int64 `json:"epoch"`
	Sample int64 `json:"sample"`
}

// MaxStreams bounds the data streams a checkpoint may record.
const MaxStreams = 1 << 16

// ModelPath returns the model file of step in run: <run>/step-000123.safetensors.
func ModelPath(run string, step int64) string {
	return filepath.Join(run, fmt.Sprintf("step-%06d.safetensors", step))
}

// OptimPath returns the optimiser file beside model file path.
func OptimPath(path string) string {
	return strings.TrimSuffix(path, ".safetensors") + ".optim.safetensors"
}

var modelName = regexp.MustCompile(`^step-([0-9]{6,18})\.safetensors$`)

// Save writes the checkpoint of step: params (by name, F32, their shapes) with meta, and
// optim, the optimiser state by key (a key "<prefix>.<param name>" holding that param's size
// takes its shape, any other key is 1-D). It returns the model file's path. On error nothing
// of an earlier checkpoint has changed.
func Save(run string, step int64, params []*nn.Param, optim map[string][]float32, meta Meta) (string, error) {
	path := ModelPath(run, step)
	if step < 0 {
		return "", fmt.Errorf("checkpoint %s: negative step %d", path, step)
	}
	// A model file marks a checkpoint that was written whole (it is renamed into place last):
	// it is never replaced, not even its optimiser file, which is written first. An optimiser
	// file alone is what a crash inside Save leaves, and is overwritten.
	if _, err := os.Lstat(path); err == nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if meta.Config != "" && !json.Valid([]byte(meta.Config)) {
		return "", fmt.Errorf("checkpoint %s: model config is not valid JSON", path)
	}
	byName, err := index(params)
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	model := make([]safetensors.Tensor, len(params))
	for i, p := range params {
		model[i] = safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: p.Shape, Data: p.Value}
	}
	var opt []safetensors.Tensor
	for _, k := range slices.Sorted(maps.Keys(optim)) {
		v := optim[k]
		shape := []int{len(v)}
		if p := paramOf(k, byName); p != nil && p.Size() == len(v) {
			shape = p.Shape
		}
		opt = append(opt, safetensors.Tensor{Name: k, DType: safetensors.F32, Shape: shape, Data: v})
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}

	optPath := OptimPath(path)
	sum := sha256.New()
	optMeta := safetensors.Metadata{
		kv(keyFormat, optimFormat), kv(keyVersion, strconv.Itoa(FormatVersion)), kv(keyStep, itoa(step)),
	}
	if err := atomicWrite(optPath, func(w io.Writer) error {
		return safetensors.Write(io.MultiWriter(w, sum), opt, optMeta)
	}); err != nil {
		return "", fmt.Errorf("checkpoint %s: optimiser state: %w", optPath, err)
	}
	modelMeta := safetensors.Metadata{
		kv(keyFormat, modelFormat), kv(keyVersion, strconv.Itoa(FormatVersion)), kv(keyConfig, meta.Config),
		kv(keyStep, itoa(step)), kv(keyEpoch, itoa(meta.Epoch)), kv(keySample, itoa(meta.Sample)),
		kv(keySeed, itoa(meta.Seed)), kv(keyRNG, meta.RNG), kv(keyOptimSHA, hex.EncodeToString(sum.Sum(nil))),
	}
	if len(meta.Streams) > 0 {
		raw, err := json.Marshal(meta.Streams)
		if err != nil {
			return "", fmt.Errorf("checkpoint %s: %w", path, err)
		}
		modelMeta = append(modelMeta, kv(keyStreams, string(raw)))
	}
	if err := atomicWrite(path, func(w io.Writer) error {
		return safetensors.Write(w, model, modelMeta)
	}); err != nil {
		os.Remove(optPath) // unpaired: no model file refers to it
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return path, nil
}

// Load reads checkpoint path (a model file) into params, after checking that every param is
// present as F32 with its shape and that no tensor is unexpected (all mismatches are listed
// in one error), and that the optimiser file beside it is the one written with it. It returns
// the metadata and the optimiser state. On an I/O error while reading values, params may be
// partly overwritten; the error says so by its return, and params must not be used.
func Load(path string, params []*nn.Param) (Meta, map[string][]float32, error) {
	fail := func(err error) (Meta, map[string][]float32, error) {
		return Meta{}, nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	byName, err := index(params)
	if err != nil {
		return fail(err)
	}
	mf, of, meta, err := open(path, true)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("checkpoint: %w", err) // err names the file
	}
	defer mf.Close()
	defer of.Close()

	problems := mismatches(mf, params, byName)
	for _, t := range of.Tensors {
		if t.DType != safetensors.F32 {
			problems = append(problems, fmt.Sprintf("optimiser state %s: %s, want F32", t.Name, t.DType))
		} else if p := paramOf(t.Name, byName); p != nil && int(t.Elems()) != p.Size() {
			problems = append(problems, fmt.Sprintf("optimiser state %s: %s%v, want F32%v", t.Name, t.DType, t.Shape, p.Shape))
		}
	}
	if len(problems) > 0 {
		return fail(fmt.Errorf("%d tensors do not match the model: %s", len(problems), strings.Join(problems, "; ")))
	}
	optim := make(map[string][]float32, len(of.Tensors))
	for _, t := range of.Tensors {
		if optim[t.Name], err = of.Float32s(t.Name); err != nil {
			return fail(fmt.Errorf("optimiser state: %w", err))
		}
	}
	if err := readValues(mf, params); err != nil {
		return fail(err)
	}
	return meta, optim, nil
}

// mismatches lists the params that model file mf lacks or holds with another dtype or shape,
// and the tensors of mf that are no param.
func mismatches(mf *safetensors.File, params []*nn.Param, byName map[string]*nn.Param) []string {
	var problems []string
	for _, p := range params {
		t, ok := mf.Info(p.Name)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s %v", p.Name, p.Shape))
		case t.DType != safetensors.F32 || !slices.Equal(t.Shape, p.Shape):
			problems = append(problems, fmt.Sprintf("mis-shaped %s: %s%v, want F32%v", p.Name, t.DType, t.Shape, p.Shape))
		}
	}
	for _, t := range mf.Tensors {
		if byName[t.Name] == nil {
			problems = append(problems, fmt.Sprintf("unexpected %s %s%v", t.Name, t.DType, t.Shape))
		}
	}
	return problems
}

func readValues(mf *safetensors.File, params []*nn.Param) error {
	for _, p := range params {
		if err := mf.ReadFloat32(p.Name, p.Value); err != nil {
			return err
		}
	}
	return nil
}

// ReadMeta returns a checkpoint's metadata (step, data positions, model config) after the
// same checks of the file pair as Load, without reading the tensors.
func ReadMeta(path string) (Meta, error) {
	mf, of, meta, err := open(path, true)
	if err != nil {
		return Meta{}, fmt.Errorf("checkpoint: %w", err)
	}
	mf.Close()
	of.Close()
	return meta, nil
}

// ErrExists is wrapped by Save's error when the checkpoint of its step is already there: Save
// never replaces a checkpoint.
var ErrExists = errors.New("already exists; a checkpoint is never overwritten")

// ErrDamaged is wrapped by Latest's error (a *DamagedError) when the newest checkpoint of a
// run is damaged.
var ErrDamaged = errors.New("damaged checkpoint")

// DamagedError reports that the newest checkpoint of a run cannot be used: its model file is
// there (so it was once written whole) but it, or the optimiser file beside it, no longer
// reads, or the pair does not agree.
type DamagedError struct {
	Run   string
	Step  int64
	File  string // the damaged file: the model file, or the optimiser file beside it
	Err   error  // what is wrong with it
	Older string // the newest complete checkpoint before it ("" when there is none)
}

func (e *DamagedError) Error() string {
	s := fmt.Sprintf("checkpoint: the newest checkpoint in %s, step %d, is damaged: %s: %v", e.Run, e.Step, e.File, e.Err)
	if e.Older != "" {
		s += fmt.Sprintf(" (the newest complete checkpoint before it is %s)", e.Older)
	} else {
		s += " (there is no complete checkpoint before it)"
	}
	return s
}

// Unwrap returns ErrDamaged.
func (e *DamagedError) Unwrap() error { return ErrDamaged }

// Latest returns the model file of the newest checkpoint in run after checking that it and
// its optimiser file are complete, readable and paired (the optimiser file's SHA-256 is the
// one the model file records). The newest checkpoint is the highest step with a model file:
// an optimiser file without one, or a temporary file, is what a crash inside Save leaves and
// is passed over. When the newest checkpoint is damaged, Latest does not fall back to an older
// one: it returns a *DamagedError naming the damaged file (and the newest complete older
// checkpoint, for the caller to offer). When run has no checkpoint, the error wraps
// fs.ErrNotExist.
func Latest(run string) (string, error) {
	steps, err := listSteps(run)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("checkpoint: no checkpoint in %s: %w", run, fs.ErrNotExist)
	}
	newest := steps[len(steps)-1]
	path := ModelPath(run, newest)
	mf, of, _, bad, err := openPair(path, true)
	if err == nil {
		mf.Close()
		of.Close()
		return path, nil
	}
	derr := &DamagedError{Run: run, Step: newest, File: bad, Err: err}
	for _, step := range slices.Backward(steps[:len(steps)-1]) {
		if mf, of, _, _, err := openPair(ModelPath(run, step), true); err == nil {
			mf.Close()
			of.Close()
			derr.Older = ModelPath(run, step)
			break
		}
	}
	return "", derr
}

// Steps returns the steps of the checkpoints (model files) in run, ascending, complete or
// not; none when run does not exist.
func Steps(run string) ([]int64, error) {
	steps, err := listSteps(run)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return steps, err
}

// Prune removes the checkpoints of steps up to upTo that are older than the newest keep
// complete (fully verified) ones among them, with any leftover temporary files of those older
// steps. Files of steps after upTo are never touched: a run resumed from an older checkpoint
// does not delete what is newer than its own. An older step's model file is removed before
// its optimiser file, so that a crash in between leaves an optimiser file alone, which is not
// a checkpoint.
func Prune(run string, keep int, upTo int64) error {
	if keep < 1 {
		return fmt.Errorf("checkpoint: prune %s: keep %d, want at least 1", run, keep)
	}
	steps, err := listSteps(run)
	if err != nil {
		return fmt.Errorf("checkpoint: prune: %w", err)
	}
	var complete []int64
	for _, step := range slices.Backward(steps) {
		if step > upTo {
			continue
		}
		if mf, of, _, _, err := openPair(ModelPath(run, step), true); err == nil {
			mf.Close()
			of.Close()
			complete = append(complete, step)
			if len(complete) > keep {
				break
			}
		}
	}
	if len(complete) <= keep {
		return nil
	}
	oldest := complete[keep-1]
	entries, err := os.ReadDir(run)
	if err != nil {
		return fmt.Errorf("checkpoint: prune: %w", err)
	}
	var errs []error
	for _, models := range []bool{true, false} {
		for _, e := range entries {
			if step, ok := stepOf(e.Name()); ok && step < oldest && modelName.MatchString(e.Name()) == models {
				if err := os.Remove(filepath.Join(run, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
		if models {
			if err := syncDir(run); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("checkpoint: prune %s: %w", run, err)
	}
	return syncDir(run)
}

var anyName = regexp.MustCompile(`^\.?step-([0-9]{6,18})\.(safetensors|optim\.safetensors)(\.tmp-.*)?$`)

// stepOf returns the step of any file this package writes in a run: model, optimiser, or their
// temporary files.
func stepOf(name string) (int64, bool) {
	m := anyName.FindStringSubmatch(name)
	if m == nil || (strings.HasPrefix(name, ".") != (m[3] != "")) {
		return 0, false
	}
	step, err := strconv.ParseInt(m[1], 10, 64)
	return step, err == nil
}

// listSteps returns the steps of the model files in run, ascending.
func listSteps(run string) ([]int64, error) {
	entries, err := os.ReadDir(run)
	if err != nil {
		return nil, err
	}
	var steps []int64
	for _, e := range entries {
		if m := modelName.FindStringSubmatch(e.Name()); m != nil && e.Type().IsRegular() {
			if step, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				steps = append(steps, step)
			}
		}
	}
	slices.Sort(steps)
	return slices.Compact(steps), nil
}

// open opens model file path and its optimiser file and checks that they are a pair of this
// format: tags, version, step, and (when verifyHash) the optimiser file's SHA-256.
func open(path string, verifyHash bool) (mf, of *safetensors.File, meta Meta, err error) {
	mf, of, meta, _, err = openPair(path, verifyHash)
	return mf, of, meta, err
}

// openPair is open that also names the file at fault when the pair does not open: the model
// file, or the optimiser file.
func openPair(path string, verifyHash bool) (mf, of *safetensors.File, meta Meta, bad string, err error) {
	optPath := OptimPath(path)
	mf, err = safetensors.OpenFile(path)
	if err != nil {
		return nil, nil, meta, path, err
	}
	bad = optPath
	of, err = safetensors.OpenFile(optPath)
	if err == nil {
		var modelFault bool
		meta, modelFault, err = pairMeta(mf.Metadata, of.Metadata)
		if err != nil {
			if modelFault {
				bad = path
			}
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	if err == nil && verifyHash {
		want, _ := mf.Metadata.Get(keyOptimSHA)
		var got string
		if got, err = fileSHA256(optPath); err == nil && got != want {
			err = fmt.Errorf("%s: SHA-256 %s, the model file records %s (not written with it)", optPath, got, want)
		}
	}
	if err != nil {
		mf.Close()
		if of != nil {
			of.Close()
		}
		return nil, nil, Meta{}, bad, err
	}
	return mf, of, meta, "", nil
}

// pairMeta parses the model file's metadata and checks it against the optimiser file's;
// modelFault says whether a problem is the model file's (otherwise the optimiser file's).
func pairMeta(mm, om safetensors.Metadata) (meta Meta, modelFault bool, err error) {
	meta, err = pairMetaOf(mm, om)
	var of optimFault
	return meta, err != nil && !errors.As(err, &of), err
}

// optimFault marks a problem of the optimiser file's metadata.
type optimFault struct{ error }

func (e optimFault) Unwrap() error { return e.error }

func pairMetaOf(mm, om safetensors.Metadata) (Meta, error) {
	var meta Meta
	get := func(m safetensors.Metadata, key string) (string, error) {
		v, ok := m.Get(key)
		if !ok {
			return "", fmt.Errorf("metadata lacks %q", key)
		}
		return v, nil
	}
	num := func(m safetensors.Metadata, key string) (int64, error) {
		v, err := get(m, key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("metadata %q = %q is not an integer", key, v)
		}
		return n, nil
	}
	if f, _ := mm.Get(keyFormat); f != modelFormat {
		return meta, fmt.Errorf("not a %s file (format %q)", modelFormat, f)
	}
	if f, _ := om.Get(keyFormat); f != optimFormat {
		return meta, optimFault{fmt.Errorf("optimiser file is not a %s file (format %q)", optimFormat, f)}
	}
	v, err := num(mm, keyVersion)
	if err != nil {
		return meta, err
	}
	if v < 1 || v > FormatVersion {
		return meta, fmt.Errorf("format version %d, this build reads 1 to %d", v, FormatVersion)
	}
	meta.Version = int(v)
	for _, f := range []struct {
		key string
		dst *int64
	}{{keyStep, &meta.Step}, {keyEpoch, &meta.Epoch}, {keySample, &meta.Sample}, {keySeed, &meta.Seed}} {
		if *f.dst, err = num(mm, f.key); err != nil {
			return meta, err
		}
	}
	if ostep, err := num(om, keyStep); err != nil || ostep != meta.Step {
		return meta, optimFault{fmt.Errorf("optimiser file is of step %d (%v), the model file of step %d", ostep, err, meta.Step)}
	}
	if meta.Config, err = get(mm, keyConfig); err != nil {
		return meta, err
	}
	if meta.RNG, err = get(mm, keyRNG); err != nil {
		return meta, err
	}
	if _, err := get(mm, keyOptimSHA); err != nil {
		return meta, err
	}
	if raw, ok := mm.Get(keyStreams); ok {
		if meta.Streams, err = parseStreams(raw); err != nil {
			return meta, fmt.Errorf("metadata %q: %w", keyStreams, err)
		}
	}
	return meta, nil
}

// parseStreams reads the data stream positions of a checkpoint, refusing a list that is
// empty, too long or holds negative positions.
func parseStreams(raw string) ([]StreamPos, error) {
	var ss []StreamPos
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ss); err != nil {
		return nil, err
	}
	if len(ss) == 0 || len(ss) > MaxStreams {
		return nil, fmt.Errorf("%d streams, want 1 to %d", len(ss), MaxStreams)
	}
	for i, s := range ss {
		if s.Epoch < 0 || s.Sample < 0 {
			return nil, fmt.Errorf("stream %d at epoch %d sample %d", i, s.Epoch, s.Sample)
		}
	}
	return ss, nil
}

// index maps params by name, refusing nil, unnamed, duplicate and inconsistent params.
func index(params []*nn.Param) (map[string]*nn.Param, error) {
	byName := make(map[string]*nn.Param, len(params))
	for i, p := range params {
		switch {
		case p == nil:
			return nil, fmt.Errorf("param %d is nil", i)
		case p.Name == "":
			return nil, fmt.Errorf("param %d has no name", i)
		case byName[p.Name] != nil:
			return nil, fmt.Errorf("param %q appears twice", p.Name)
		case slices.ContainsFunc(p.Shape, func(d int) bool { return d < 0 }):
			return nil, fmt.Errorf("param %q has shape %v", p.Name, p.Shape)
		case len(p.Value) != p.Size():
			return nil, fmt.Errorf("param %q: %d values for shape %v", p.Name, len(p.Value), p.Shape)
		}
		byName[p.Name] = p
	}
	return byName, nil
}

// paramOf returns the param that optimiser key "<prefix>.<param name>" belongs to, or nil.
func paramOf(key string, byName map[string]*nn.Param) *nn.Param {
	if _, name, ok := strings.Cut(key, "."); ok {
		return byName[name]
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := fileinput.OpenRegular(path) // a FIFO swapped in for the file must not block

	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func kv(key, value string) safetensors.Pair { return safetensors.Pair{Key: key, Value: value} }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
