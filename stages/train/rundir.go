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

// prepareRunDir readies the locked run directory: a new run refuses a directory that already
// holds checkpoints (it would mix two runs, and overwrite them) and records its config; a
// resume records its config once the checkpoint is checked (writeRunConfig).
func prepareRunDir(opts Options, cfg Config) error {
	removeStaleTemps(opts.RunDir, runlog.ConfigName, runlog.MetricsName)
	if opts.Resume != "" {
		return nil
	}
	if steps, err := checkpoint.Steps(opts.RunDir); err != nil {
		return fmt.Errorf("pretrain: %w", err)
	} else if len(steps) > 0 {
		return fmt.Errorf("pretrain: %s already holds a run (checkpoint %s): continue it with --resume latest, or choose another --out",
			opts.RunDir, filepath.Base(checkpoint.ModelPath(opts.RunDir, steps[len(steps)-1])))
	}
	return writeConfig(opts.RunDir, cfg)
}

// writeConfig writes the run's config.yaml: the recipe as given (train.epochs, not the
// steps derived from them), so that it loads back as a recipe.
func writeConfig(runDir string, cfg Config) error {
	raw, err := yaml.Marshal(cfg.recipe())
	if err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(runDir, runlog.ConfigName), raw)
}

// resolveResume returns the checkpoint a resume starts from. "latest" is the newest
// checkpoint of the run; when it is damaged, nothing falls back to an older one silently.
func resolveResume(opts Options) (string, error) {
	if opts.Resume != "latest" {
		return opts.Resume, nil
	}
	path, err := checkpoint.Latest(opts.RunDir)
	var de *checkpoint.DamagedError
	if errors.As(err, &de) {
		hint := "repair or restore it, or start a new run"
		if de.Older != "" {
			hint = fmt.Sprintf("restore it, or fall back explicitly with --resume %s (the newest complete checkpoint before it; the newer files are left untouched)", de.Older)
		}
		return "", fmt.Errorf("--resume latest: %w; nothing was resumed: %s", err, hint)
	}
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
