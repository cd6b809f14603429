package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of one stage's counters. Durations are summed over the stage's
// goroutines, so with several workers Busy can exceed Elapsed; Busy / (Elapsed × Workers) is
// the pool's utilisation. A stage whose WaitIn dominates is starved by its upstream; one whose
// WaitOut dominates is held back by its downstream.
type Stats struct {
	Stage   string
	Workers int
	In      int64 // items received from upstream
	Out     int64 // items sent downstream (for a sink or receiver: items consumed)
	Skipped int64 // items dropped with ErrSkip

	Busy    time.Duration // time in the stage's own work (the user function, batching, …)
	WaitIn  time.Duration // time blocked waiting for an input item
	WaitOut time.Duration // time blocked because the output channel was full
	Elapsed time.Duration // since the stage started, up to now or to its end
	Done    bool          // the stage has returned

	Queued, QueueCap int // items waiting in the output channel, and its capacity
}

// Rate returns the stage's output in items per second over Elapsed.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Out) / s.Elapsed.Seconds()
}

// String formats the snapshot on one line for progress logs.
func (s Stats) String() string {
	return fmt.Sprintf("%s: in=%d out=%d skip=%d %.1f/s busy=%v wait_in=%v wait_out=%v queue=%d/%d",
		s.Stage, s.In, s.Out, s.Skipped, s.Rate(), s.Busy.Round(time.Millisecond),
		s.WaitIn.Round(time.Millisecond), s.WaitOut.Round(time.Millisecond), s.Queued, s.QueueCap)
}

// LogValue lets a Stats be logged as a structured group with log/slog.
func (s Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("stage", s.Stage),
		slog.Int("workers", s.Workers),
		slog.Int64("in", s.In),
		slog.Int64("out", s.Out),
		slog.Int64("skipped", s.Skipped),
		slog.Float64("items_per_s", s.Rate()),
		slog.Duration("busy", s.Busy),
		slog.Duration("wait_in", s.WaitIn),
		slog.Duration("wait_out", s.WaitOut),
		slog.Duration("elapsed", s.Elapsed),
		slog.Int("queued", s.Queued),
	)
}

// Stats returns a snapshot of every stage, in the order the stages were created. It is safe to
// call while the pipeline runs and after it has ended.
func (p *Pipeline) Stats() []Stats {
	p.mu.Lock()
	stages := append([]*counters(nil), p.stages...)
	p.mu.Unlock()
	out := make([]Stats, len(stages))
	for i, c := range stages {
		out[i] = c.snapshot()
	}
	return out
}

// counters are one stage's live metrics, updated atomically by its goroutines.
type counters struct {
	name    string
	workers int
	start   time.Time
	queue   func() (n, capacity int) // output channel occupancy; nil for sinks

	in, out, skipped      atomic.Int64
	busy, waitIn, waitOut atomic.Int64 // nanoseconds
	elapsed               atomic.Int64 // nanoseconds, set when the stage ends
	done                  atomic.Bool
}

// stage registers a new stage's counters with p.
func (p *Pipeline) stage(name string, workers int) *counters {
	c := &counters{name: name, workers: workers, start: time.Now()}
	p.mu.Lock()
	p.stages = append(p.stages, c)
	p.mu.Unlock()
	return c
}

// finish marks the stage ended, freezing Elapsed.
func (c *counters) finish() {
	if !c.done.Load() {
		c.elapsed.Store(int64(time.Since(c.start)))
		c.done.Store(true)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Stage:   c.name,
		Workers: c.workers,
		In:      c.in.Load(),
		Out:     c.out.Load(),
		Skipped: c.skipped.Load(),
		Busy:    time.Duration(c.busy.Load()),
		WaitIn:  time.Duration(c.waitIn.Load()),
		WaitOut: time.Duration(c.waitOut.Load()),
		Done:    c.done.Load(),
	}
	if s.Done {
		s.Elapsed = time.Duration(c.elapsed.Load())
	} else {
		s.Elapsed = time.Since(c.start)
	}
	if c.queue != nil {
		s.Queued, s.QueueCap = c.queue()
	}
	return s
}

// wrap attaches the stage name (and item position) to err.
func (c *counters) wrap(item int64, err error) error {
	if se, ok := err.(*StageError); ok && se.Stage == c.name {
		return err
	}
	return &StageError{Stage: c.name, Item: item, Err: err}
}

// recv takes the next item from ch, timing the wait only when it has to block.
// ok is false at the end of the stream; err is the context's cause when it is done first.
func recv[T any](ctx context.Context, ch <-chan T, c *counters) (v T, ok bool, err error) {
	select {
	case v, ok = <-ch:
	default:
		t := time.Now()
		select {
		case v, ok = <-ch:
		case <-ctx.Done():
			return v, false, context.Cause(ctx)
		}
		c.waitIn.Add(int64(time.Since(t)))
	}
	if ok {
		c.in.Add(1)
	}
	return v, ok, nil
}

// send puts v on ch, timing the wait only when it has to block.
func send[T any](ctx context.Context, ch chan<- T, v T, c *counters) error {
	select {
	case ch <- v:
	default:
		t := time.Now()
		select {
		case ch <- v:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		c.waitOut.Add(int64(time.Since(t)))
	}
	c.out.Add(1)
	return nil
}
