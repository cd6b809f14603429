// Package export is the export stage: a model read from any weights file clipgo reads, its
// image and text towers written as ONNX graphs (fusion/onnx) for serving outside clipgo, e.g.
// with onnxruntime.
package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/onnx"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// Formats lists the formats Run writes.
var Formats = []string{FormatONNX}

// FormatONNX is ONNX (IR 8, opset 17).
const FormatONNX = "onnx"

// File names of the two graphs in the output directory.
const (
	ImageFile = "image_encoder.onnx"
	TextFile  = "text_encoder.onnx"
)

// Config is what to export.
type Config struct {
	Checkpoint string // a run directory (its latest checkpoint), a Hugging Face model directory, or weights in any naming fusion.ReadWeights reads
	QuickGELU  bool   // the checkpoint's activation is QuickGELU (a state dict does not say)
	Format     string // FormatONNX (the default when empty)
	Out        string // the directory to write ImageFile and TextFile into (created if missing)
	// ExternalData puts the weights of each graph in a file beside it (NAME.onnx.data), as
	// ONNX's external data; a graph over protobuf's 2 GiB limit is always written so.
	ExternalData bool
	Producer     string // the producer_version the files record (clipgo's version)
	Progress     io.Writer
	Log          *slog.Logger
}

// Result says what was written.
type Result struct {
	Model      fusion.Config
	ImageFile  string
	TextFile   string
	ImageBytes int64 // ImageFile's size, its external data's included
	TextBytes  int64
	// ImageData and TextData are the graphs' external data files, empty when the weights are
	// inside the graph files.
	ImageData, TextData string
}

// DataSuffix ends the name of a graph's external data file, beside it.
const DataSuffix = ".data"

// externalMinBytes is the smallest tensor written to external data (onnx.save_model's default
// size_threshold): smaller ones stay inline.
const externalMinBytes = 1024

// Run writes the checkpoint's image and text encoders into cfg.Out. Each file appears whole or
// not at all, so an interrupted export leaves the previous files (if any) and is simply run
// again.
func Run(cfg Config) (Result, error) {
	if cfg.Format != "" && cfg.Format != FormatONNX {
		return Result{}, fmt.Errorf("export: format %q: want one of %v", cfg.Format, Formats)
	}
	if cfg.Out == "" {
		return Result{}, fmt.Errorf("export: no output directory")
	}
	path, err := evalmodel.WeightsFile(cfg.Checkpoint)
	if err != nil {
		return Result{}, err
	}
	model, params, err := fusion.ReadWeights(path, cfg.QuickGELU)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Result{}, fmt.Errorf("export: %w", err)
	}
	progressTo := cfg.Progress
	if progressTo == nil {
		progressTo = io.Discard
	}
	bar := progress.New(progressTo, cfg.Log, "export", 2)
	defer bar.Finish()
	r := Result{Model: model, ImageFile: filepath.Join(cfg.Out, ImageFile), TextFile: filepath.Join(cfg.Out, TextFile)}
	towers := []struct {
		path  string
		build func(fusion.Config, []*nn.Param, string) (*onnx.Graph, error)
		size  *int64
		data  *string
	}{{r.ImageFile, onnx.ImageEncoder, &r.ImageBytes, &r.ImageData}, {r.TextFile, onnx.TextEncoder, &r.TextBytes, &r.TextData}}
	for _, t := range towers {
		g, err := t.build(model, params, cfg.Producer)
		if err != nil {
			return Result{}, fmt.Errorf("export %s: %w", path, err)
		}
		if cfg.ExternalData || g.Bytes() > onnx.MaxModelBytes {
			*t.data = t.path + DataSuffix
		}
		if *t.size, err = write(t.path, *t.data, g); err != nil {
			return Result{}, err
		}
		bar.Add(1, filepath.Base(t.path))
	}
	return r, nil
}

// write writes g to path atomically, its weights to dataPath (its own atomic file, written
// first) unless that is empty, and returns the bytes written. A graph written inline removes a
// data file an earlier export left beside it.
func write(path, dataPath string, g *onnx.Graph) (int64, error) {
	f, err := atomicfile.Create(path)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer f.Abort() // after Commit, nothing
	var n, dn int64
	if dataPath == "" {
		if n, err = g.WriteTo(f); err != nil {
			return 0, fmt.Errorf("export %s: %w", path, err)
		}
	} else {
		d, err := atomicfile.Create(dataPath)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		defer d.Abort()
		if n, dn, err = g.WriteExternal(f, d, filepath.Base(dataPath), externalMinBytes); err != nil {
			return 0, fmt.Errorf("export %s: %w", path, err)
		}
		if err := d.Commit(); err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
	}
	if err := f.Commit(); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	if dataPath == "" {
		if err := os.Remove(path + DataSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("export: %w", err)
		}
	}
	return n + dn, nil
}
