// Package evalmodel loads a trained checkpoint for inference, as the evaluation and index
// stages use it: the encoder, the model config and a description of the model for results.
package evalmodel

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/vision"
)

// DefaultBatch is the number of images per model call when none is given.
const DefaultBatch = 64

// Model is a checkpoint loaded for evaluation: the model's inference path alone, without
// its training graph.
type Model struct {
	Path   string // the checkpoint file
	Enc    *fusion.Encoder
	Config fusion.Config
	Desc   string // for the "model" field of results (see Describe)
}

// Close releases the model.
func (e *Model) Close() { e.Enc.Close() }

// HFWeights is the weights file of a Hugging Face model directory (config.json beside it).
const HFWeights = "model.safetensors"

// Open loads a model for batches of up to batch images or texts (DefaultBatch when < 1): a
// checkpoint, the latest one of a run directory, a Hugging Face model directory, or any
// weights file fusion.ReadWeights reads (open_clip or OpenAI state dicts, whose activation
// quickGELU gives).
func Open(path string, batch int, quickGELU bool) (*Model, error) {
	path, err := WeightsFile(path)
	if err != nil {
		return nil, err
	}
	batch = cmp.Or(max(batch, 0), DefaultBatch)
	enc, err := fusion.LoadEncoder(path, batch, quickGELU)
	if err != nil {
		return nil, err // it names the file already
	}
	cfg := enc.Config()
	return &Model{Path: path, Enc: enc, Config: cfg, Desc: Describe(path, cfg)}, nil
}

// WeightsFile is the weights file a --checkpoint names: the path itself, a Hugging Face model
// directory's model.safetensors, or a run directory's latest checkpoint.
func WeightsFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("--checkpoint is required")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.IsDir() {
		return path, nil
	}
	if hf := filepath.Join(path, HFWeights); fileExists(hf) {
		return hf, nil
	}
	return checkpoint.Latest(path) // a run directory
}

// SHA256 returns the hex SHA-256 of the checkpoint's model file: what tells its weights apart
// from those of another checkpoint of the same architecture, whose config is the same.
func (e *Model) SHA256() (string, error) {
	return FileSHA256(e.Path)
}

// FileSHA256 returns the hex SHA-256 of the regular file at path.
func FileSHA256(path string) (string, error) {
	f, err := fileinput.OpenRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Describe names a checkpoint's model for the result's "model" field: the preset its run
// recorded in config.yaml beside it (when there is one), and the sizes that the checkpoint
// itself records, e.g. "tiny ViT-4/32 w128 L2, text w128 L2 ctx32, embed 128", or for a
// ModifiedResNet tower "RN[3,4,6,3] w64 224px, text w512 L12 ctx77, embed 1024".
func Describe(path string, cfg fusion.Config) string {
	v, t := cfg.Vision, cfg.Text
	tower := fmt.Sprintf("ViT-%d/%d w%d L%d", v.PatchSize, v.ImageSize, v.Width, v.Layers)
	if v.Type == vision.TypeResNet {
		l := v.StageLayers
		tower = fmt.Sprintf("RN[%d,%d,%d,%d] w%d %dpx", l[0], l[1], l[2], l[3], v.Width, v.ImageSize)
	}
	d := fmt.Sprintf("%s, text w%d L%d ctx%d, embed %d", tower, t.Width, t.Layers, t.ContextLength, cfg.EmbedDim)
	// A FIFO or device there is passed over, not waited on.
	raw, err := fileinput.ReadFile(filepath.Join(filepath.Dir(path), runlog.ConfigName), config.MaxBytes)
	if err != nil {
		return d
	}
	var run struct {
		Preset string `yaml:"model_preset"`
	}
	if yaml.Unmarshal(raw, &run) == nil && run.Preset != "" && len(run.Preset) < 64 {
		return run.Preset + " " + d
	}
	return d
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
