package train

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
)

// splitFiles returns the shard files of one split of a prepared dataset.
func splitFiles(dir, split string) ([]string, error) {
	m, err := shard.ReadManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no prepared dataset at %s: make it with clipgo prepare, or make data for the demo)", err, dir)
	}
	if err != nil {
		return nil, err
	}
	return m.Files(dir, split)
}

// prepareRunDir creates the run directory and records the resolved config. A new run refuses
// a directory that already holds checkpoints: it would mix two runs.
func prepareRunDir(opts Options, cfg Config) error {
	if opts.RunDir == "" {
		return errors.New("pretrain: --out RUN_DIR is required")
	}
	if err := os.MkdirAll(opts.RunDir, 0o755); err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	removeStaleTemps(opts.RunDir, runlog.ConfigName, runlog.MetricsName)
	if opts.Resume == "" {
		if latest, err := checkpoint.Latest(opts.RunDir); err == nil {
			return fmt.Errorf("pretrain: %s already holds a run (checkpoint %s): continue it with --resume latest, or choose another --out",
				opts.RunDir, filepath.Base(latest))
		}
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(opts.RunDir, runlog.ConfigName), raw)
}

func resolveResume(opts Options) (string, error) {
	if opts.Resume != "latest" {
		return opts.Resume, nil
	}
	path, err := checkpoint.Latest(opts.RunDir)
	if err != nil {
		return "", fmt.Errorf("--resume latest: %w", err)
	}
	return path, nil
}

// removeStaleTemps deletes the temporary files (".<name>.tmp-*") that a killed process left
// beside the named files of dir: one process writes a run directory, so none is in use.
func removeStaleTemps(dir string, names ...string) {
	for _, name := range names {
		stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*"))
		for _, p := range stale {
			os.Remove(p)
		}
	}
}
