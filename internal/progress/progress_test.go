package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLinesOffATerminal(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b := New(&bytes.Buffer{}, log, "work", 100) // a buffer is not a terminal: log lines
	b.every = 0
	b.start = time.Now().Add(-time.Second)
	b.Add(10, "loss 1.0")
	b.Finish()
	out := logs.String()
	for _, want := range []string{"msg=work", "done=10", "total=100", "eta=", `detail="loss 1.0"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

// clock is a fake time for a bar: tick moves it on.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) tick(d time.Duration)    { c.t = c.t.Add(d) }
func fakeBar(total int64) (*Bar, *clock) { return fakeBarLog(total, nil) }

func fakeBarLog(total int64, log *slog.Logger) (*Bar, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := New(&bytes.Buffer{}, log, "work", total)
	b.now, b.start, b.lastLog = c.now, c.t, c.t
	return b, c
}

// TestResumedCountsOnlyThisProcess: after a resume at 900 of 1000, 10 units in 10 s is a rate
// of 1/s (not 91/s) and 90 s left (not 1 s).
func TestResumedCountsOnlyThisProcess(t *testing.T) {
	b, c := fakeBar(1000)
	b.Resumed(900)
	c.tick(10 * time.Second)
	b.Add(10, "")
	now := c.now()
	if r := b.rate(now); r != 1 {
		t.Errorf("rate %g/s, want 1/s: the 900 resumed units are not this process's", r)
	}
	if eta, ok := b.eta(now); !ok || eta != 90*time.Second {
		t.Errorf("eta %v (%v), want 1m30s for the 90 units left", eta, ok)
	}
	if got := b.rateETA(now); got != "(1/s, 1m30s left)" {
		t.Errorf("terminal text %q", got)
	}
}

func TestSetTotalGivesAnETA(t *testing.T) {
	var logs bytes.Buffer
	b, c := fakeBarLog(-1, slog.New(slog.NewTextHandler(&logs, nil)))
	b.every = 0
	c.tick(2 * time.Second)
	b.Add(10, "")
	if strings.Contains(logs.String(), "eta=") {
		t.Errorf("an ETA without a total: %s", logs.String())
	}
	b.SetTotal(30)
	c.tick(2 * time.Second)
	b.Add(10, "")
	if !strings.Contains(logs.String(), "total=30 eta=2s") {
		t.Errorf("log %q, want total=30 eta=2s (10 left at 5/s)", logs.String())
	}
}
