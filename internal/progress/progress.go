// Package progress shows how far long work has come: a live bar on a terminal
// (github.com/schollz/progressbar), and a log line every few seconds elsewhere (CI logs, files),
// where a redrawn bar would only be noise.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar counts units of work towards a total (-1 when unknown). It is safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	bar     *progressbar.ProgressBar // nil when not on a terminal
	log     *slog.Logger
	what    string
	total   int64
	n       int64
	start   time.Time
	lastLog time.Time
	every   time.Duration
}

// New starts a bar describing what (e.g. "prepare") with total units (-1: unknown), drawn on w
// when w is a terminal and logged through log otherwise.
func New(w io.Writer, log *slog.Logger, what string, total int64) *Bar {
	b := &Bar{log: log, what: what, total: total, start: time.Now(), every: 10 * time.Second}
	b.lastLog = b.start
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("it"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return b
}

// Add records n more units done; detail, when not empty, is shown beside the bar.
func (b *Bar) Add(n int64, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if b.bar != nil {
		if detail != "" {
			b.bar.Describe(b.what + " " + detail)
		}
		_ = b.bar.Add64(n)
		return
	}
	if now := time.Now(); now.Sub(b.lastLog) >= b.every && b.log != nil {
		b.lastLog = now
		rate := float64(b.n) / now.Sub(b.start).Seconds()
		args := []any{"done", b.n, "per_s", fmt.Sprintf("%.1f", rate)}
		if b.total > 0 {
			args = append(args, "total", b.total)
			if rate > 0 {
				eta := time.Duration(float64(b.total-b.n) / rate * float64(time.Second))
				args = append(args, "eta", eta.Round(time.Second).String())
			}
		}
		if detail != "" {
			args = append(args, "detail", detail)
		}
		b.log.Info(b.what, args...)
	}
}

// Finish clears the bar from the terminal.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
