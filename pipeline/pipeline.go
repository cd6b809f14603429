// Package pipeline runs typed stages joined by bounded channels: a source, worker-pool maps
// (ordered or not, able to skip items), batching, prefetch buffers and a sink or a pull-style
// receiver. It exists so that the data loader (and anything else that streams work through
// goroutines) gets cancellation, first-error-wins, leak-free shutdown and per-stage metrics
// without re-deriving them each time. It knows nothing about the items it moves.
//
// A Pipeline is built by calling stage constructors; each starts its goroutines at once, like
// errgroup.Group.Go, and returns the Stream it produces, which exactly one later stage consumes:
//
//	p := pipeline.New(ctx)
//	recs := pipeline.Source(p, "read", readShards)
//	imgs := pipeline.Map(p, "decode", recs, pipeline.Options{Workers: 4}, decode) // ordered
//	batches := pipeline.Batch(p, "batch", imgs, 128, false)
//	pipeline.Sink(p, "train", pipeline.Buffer(p, "prefetch", batches, 2), step)
//	err := p.Wait()
//
// The first error any stage returns cancels the pipeline's context and is what Wait returns,
// as a *StageError naming the stage (and the item's position when a map failed). Every stage
// returns once the context is done, so Wait (or Stop) always ends with no goroutine left.
// A Stream that no stage consumes blocks its producer until the context is cancelled.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// ErrSkip is returned (possibly wrapped) by a Map function to drop the item: it is counted in
// Stats.Skipped and the pipeline goes on. Use it for bad records that must not stop a run.
var ErrSkip = errors.New("pipeline: skip item")

// errStopped is the cause recorded when the owner calls Stop: it is not an error to report.
var errStopped = errors.New("pipeline: stopped")

// StageError is the error Wait returns: the stage that failed first and why.
type StageError struct {
	Stage string // name given to the stage constructor
	Item  int64  // 0-based position of the item in the stage's input, or -1 when none applies
	Err   error
}

// Error names the stage and item so that the message alone locates the failure.
func (e *StageError) Error() string {
	if e.Item >= 0 {
		return fmt.Sprintf("pipeline stage %s, item %d: %v", e.Stage, e.Item, e.Err)
	}
	return fmt.Sprintf("pipeline stage %s: %v", e.Stage, e.Err)
}

// Unwrap returns the stage's own error, so errors.Is/As see through the stage context.
func (e *StageError) Unwrap() error { return e.Err }

// Pipeline owns the goroutines of its stages and their shared context. The zero value is not
// usable: call New.
type Pipeline struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	errOnce sync.Once
	err     error

	mu     sync.Mutex
	stages []*counters
}

// New returns an empty pipeline whose stages stop when ctx is done.
func New(ctx context.Context) *Pipeline {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Pipeline{ctx: ctx, cancel: cancel}
}

// Context returns the context handed to every stage function; it is cancelled by the first
// error, by Stop, or by the parent context.
func (p *Pipeline) Context() context.Context { return p.ctx }

// Wait blocks until every stage has returned, then returns the first error (a *StageError),
// or nil when the pipeline ran to its end or was stopped with Stop.
func (p *Pipeline) Wait() error {
	p.wg.Wait()
	p.fail(nil) // release the context; a no-op when an error came first
	if p.err == errStopped {
		return nil
	}
	return p.err
}

// Stop cancels the pipeline, for a consumer that wants no more items, and waits for every
// stage to return. It returns the error of a stage that had failed before the stop, if any.
func (p *Pipeline) Stop() error {
	p.fail(errStopped)
	return p.Wait()
}

// fail records the first error and cancels the pipeline; err nil records a clean end.
func (p *Pipeline) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		if err == nil {
			p.cancel(context.Canceled)
			return
		}
		p.cancel(err)
	})
}

// cause is the error a stage returns when it sees the context done: the parent's error when
// the parent was cancelled (a stage failure has already been recorded otherwise).
func (p *Pipeline) cause() error { return context.Cause(p.ctx) }

// ErrPanic is wrapped by the error of a stage whose function panicked: the panic is
// recovered, the pipeline shuts down cleanly, and the message carries the panic value and the
// stack, instead of a crash of the whole process from a worker goroutine.
var ErrPanic = errors.New("pipeline: stage panicked")

// run starts fn as a goroutine of stage c; its error, if any, fails the pipeline.
func (p *Pipeline) run(c *counters, fn func() error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				p.fail(c.wrap(-1, fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack())))
			}
		}()
		if err := fn(); err != nil {
			p.fail(c.wrap(-1, err))
		}
	}()
}

// Stream is the typed output of one stage, consumed by exactly one other stage.
type Stream[T any] struct {
	p    *Pipeline
	ch   chan T
	from *counters
	used bool
}

// newStream creates the output of stage c with channel capacity n.
func newStream[T any](p *Pipeline, c *counters, n int) *Stream[T] {
	s := &Stream[T]{p: p, ch: make(chan T, max(n, 0)), from: c}
	c.queue = func() (int, int) { return len(s.ch), cap(s.ch) }
	return s
}

// take hands the stream's channel to its one consumer. Joining a stream to a second consumer
// or to another pipeline is a programming error, reported by a panic at construction time.
func (s *Stream[T]) take(p *Pipeline) <-chan T {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case s.p != p:
		panic("pipeline: stream of stage " + s.from.name + " used in another pipeline")
	case s.used:
		panic("pipeline: stream of stage " + s.from.name + " consumed twice")
	}
	s.used = true
	return s.ch
}
