package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestPanicInAStageBecomesAnError: a worker that panics fails the pipeline with ErrPanic,
// naming the stage, and every goroutine still ends.
func TestPanicInAStageBecomesAnError(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := New(context.Background())
	nums := Source(p, "count", func(ctx context.Context, emit func(int) error) error {
		for i := 0; i < 100; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	})
	out := Map(p, "explode", nums, Options{Workers: 2}, func(ctx context.Context, i int) (int, error) {
		if i == 7 {
			var m map[string]int
			m["boom"] = i // nil map write: a runtime panic
		}
		return i, nil
	})
	Sink(p, "drain", out, func(context.Context, int) error { return nil })
	err := p.Wait()
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("Wait = %v, want ErrPanic", err)
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "explode" || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("error %v does not name the stage and the panic", err)
	}
}
