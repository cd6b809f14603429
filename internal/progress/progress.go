// Package progress shows how far long work has come: a live bar on a terminal
// (github.com/schollz/progressbar), and a log line every few seconds elsewhere (CI logs, files),
// where a redrawn bar would only be noise. Both show the total, the rate and the time left
// (ETA) when the total is known; the rate counts only the units done since the bar started,
// so that a resumed job's rate and ETA are its own (see Resumed).
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
	detail  string
	total   int64
	n       int64
	base    int64 // units done before this bar started (Resumed): not in the rate
	start   time.Time
	lastLog time.Time
	every   time.Duration
	now     func() time.Time
}

// New starts a bar describing what (e.g. "prepare") with total units (-1: unknown), drawn on w
// when w is a terminal and logged through log otherwise.
func New(w io.Writer, log *slog.Logger, what string, total int64) *Bar {
	b := &Bar{log: log, what: what, total: total, every: 10 * time.Second, now: time.Now}
	b.start = b.now()
	b.lastLog = b.start
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// The library's own rate and ETA would count units done before a resume as done in
		// its first second: the bar's description carries ours instead.
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return b
}

// Resumed records done units finished before this process began (a resumed run's steps):
// they count toward the total, not toward the rate, and the ETA is of the units left.
func (b *Bar) Resumed(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += done
	b.base += done
	if b.bar != nil {
		_ = b.bar.Add64(done)
	}
}

// SetTotal sets the total once it is known (a count that finishes after the work started).
func (b *Bar) SetTotal(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
	if b.bar != nil {
		b.bar.ChangeMax64(total)
	}
}

// Total returns the total (-1: unknown).
func (b *Bar) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Add records n more units done; detail, when not empty, is shown beside the bar.
func (b *Bar) Add(n int64, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if detail != "" {
		b.detail = detail
	}
	now := b.now()
	if b.bar != nil {
		desc := b.what
		if b.detail != "" {
			desc += " " + b.detail
		}
		if s := b.rateETA(now); s != "" {
			desc += " " + s
		}
		b.bar.Describe(desc)
		_ = b.bar.Add64(n)
		return
	}
	if now.Sub(b.lastLog) >= b.every && b.log != nil {
		b.lastLog = now
		rate := b.rate(now)
		args := []any{"done", b.n, "per_s", fmt.Sprintf("%.1f", rate)}
		if b.total > 0 {
			args = append(args, "total", b.total)
			if eta, ok := b.eta(now); ok {
				args = append(args, "eta", eta.String())
			}
		}
		if detail != "" {
			args = append(args, "detail", detail)
		}
		b.log.Info(b.what, args...)
	}
}

// rate is the units per second done since the bar started.
func (b *Bar) rate(now time.Time) float64 {
	el := now.Sub(b.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(b.n-b.base) / el
}

// eta is the time the units left take at the rate so far, when both are known.
func (b *Bar) eta(now time.Time) (time.Duration, bool) {
	rate := b.rate(now)
	if b.total <= 0 || rate <= 0 {
		return 0, false
	}
	left := max(b.total-b.n, 0)
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second), true
}

// rateETA writes the rate and the ETA for the terminal bar: "(12.5/s, 3m20s left)".
func (b *Bar) rateETA(now time.Time) string {
	rate := b.rate(now)
	if rate <= 0 {
		return ""
	}
	if eta, ok := b.eta(now); ok {
		return fmt.Sprintf("(%.3g/s, %s left)", rate, eta)
	}
	return fmt.Sprintf("(%.3g/s)", rate)
}

// Finish clears the bar from the terminal.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
