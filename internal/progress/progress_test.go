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
