package tests

// No blind allocation (issue 13, item 9): sizes from outside — a --set, a checkpoint's
// metadata — are checked against limits and against the machine's available memory before
// clipgo allocates, and pretrain prints its memory estimate at start-up.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/preset"
)

func TestMemory(t *testing.T) {
	bin := buildCLI(t)
	data := faultData(t, bin)

	t.Run("estimate printed at start-up", func(t *testing.T) {
		run := filepath.Join(t.TempDir(), "run")
		code, out := faultStart(t, bin, faultArgs(data, run, 2, 2)...).wait()
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		var line string
		for l := range strings.Lines(out) {
			if strings.Contains(l, `msg="memory estimate"`) {
				line = l
			}
		}
		if !strings.Contains(line, "parameters") || !strings.Contains(line, "activations for batch 8") || !strings.Contains(line, "MemAvailable") {
			t.Fatalf("no memory estimate line with parameters, activations and what is available:\n%s", out)
		}
		t.Logf("start-up line: %s", strings.TrimSpace(line))
	})

	t.Run("batch of 100000 refused before allocating", func(t *testing.T) {
		// A child's ru_maxrss starts from the test process's RSS (it is forked sharing its
		// memory): compare with a child that allocates nothing.
		maxRSS := func(c *faultChild) int64 {
			c.wait()
			if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				return ru.Maxrss << 10
			}
			return 0
		}
		base := maxRSS(faultStart(t, bin, "pretrain", "--help"))
		run := filepath.Join(t.TempDir(), "run")
		c := faultStart(t, bin, faultArgs(data, run, 2, 2, "--set", "train.batch_size=100000")...)
		code, out := c.wait()
		resumeRefused(t, "train.batch_size=100000", code, out, "not enough memory", "activations for batch 100000", "MemAvailable", "lower train.batch_size")
		if rss := maxRSS(c); rss-base > 300<<20 {
			t.Errorf("the refused run peaked at %d MiB of RSS, %d MiB more than clipgo --help: it allocated before refusing", rss>>20, (rss-base)>>20)
		}
		if _, err := os.Stat(run); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the refused run created its run directory (%v): it should refuse before writing anything", err)
		}
		t.Logf("refused: %s", lastLine(out))
	})

	t.Run("sizes over the limits refused", func(t *testing.T) {
		for _, set := range []string{"model.text.vocab_size=1000000000", "model.vision.image_size=1048576", "model.vision.layers=100000"} {
			code, out := faultStart(t, bin, faultArgs(data, filepath.Join(t.TempDir(), "run"), 2, 2, "--set", set)...).wait()
			key := strings.SplitN(set, "=", 2)[0]
			resumeRefused(t, set, code, out, key, "over the limit")
		}
	})

	t.Run("checkpoint metadata over the limits refused", func(t *testing.T) {
		var cfg fusion.Config
		cfg.Vision.MLPRatio, cfg.Text.MLPRatio = 4, 4
		if err := preset.Load("tiny", &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Text.VocabSize = 2_000_000_000 // 2e9 × 128 floats: a terabyte
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "step-000010.safetensors")
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, nil, safetensors.Metadata{{Key: "format", Value: "clipgo-checkpoint"},
			{Key: "format_version", Value: "1"}, {Key: "config", Value: string(raw)}, {Key: "step", Value: "10"}}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		run := filepath.Join(t.TempDir(), "run")
		code, out := faultStart(t, bin, faultArgs(data, run, 20, 2, "--resume", path)...).wait()
		resumeRefused(t, "a checkpoint recording vocab_size 2e9", code, out, path, "model.text.vocab_size 2000000000 is over the limit")
		t.Logf("refused: %s", lastLine(out))
	})
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
