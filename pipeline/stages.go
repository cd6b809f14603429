package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"time"
)

// Source starts a stage that produces items by calling emit, like a push iterator with a
// context and an error. emit returns an error once the pipeline is cancelled; gen must then
// return (that error or its own). The stream ends when gen returns nil.
func Source[T any](p *Pipeline, name string, gen func(ctx context.Context, emit func(T) error) error) *Stream[T] {
	c := p.stage(name, 1)
	out := newStream[T](p, c, 1)
	p.run(c, func() error {
		defer c.finish()
		last := time.Now()
		emit := func(v T) error {
			c.in.Add(1)
			c.busy.Add(int64(time.Since(last)))
			err := send(p.ctx, out.ch, v, c)
			last = time.Now()
			return err
		}
		if err := gen(p.ctx, emit); err != nil {
			return err
		}
		close(out.ch)
		return nil
	})
	return out
}

// Options shape a Map stage. The zero value is one worker, ordered, with a one-item buffer.
type Options struct {
	// Workers is the number of goroutines calling the function; values below 1 mean 1.
	Workers int
	// Unordered lets results leave as soon as they are ready. By default a Map emits its
	// outputs in input order whatever the number of workers, holding at most 2×Workers
	// items in flight.
	Unordered bool
	// Buffer is the capacity of the output channel; values below 1 mean Workers.
	Buffer int
}

// Map starts a stage that applies fn to every item of in with a pool of workers. fn returning
// an error wrapping ErrSkip drops the item (counted in Stats.Skipped); any other error stops
// the pipeline and is reported with the item's input position.
func Map[T, U any](p *Pipeline, name string, in *Stream[T], opt Options, fn func(context.Context, T) (U, error)) *Stream[U] {
	workers := max(opt.Workers, 1)
	buffer := opt.Buffer
	if buffer < 1 {
		buffer = workers
	}
	src := in.take(p)
	c := p.stage(name, workers)
	out := newStream[U](p, c, buffer)
	if workers == 1 || opt.Unordered {
		mapUnordered(p, c, src, out.ch, workers, fn)
	} else {
		mapOrdered(p, c, src, out.ch, workers, fn)
	}
	return out
}

// call runs fn on one item, timing it; it reports skip for ErrSkip.
func call[T, U any](ctx context.Context, c *counters, fn func(context.Context, T) (U, error), v T) (u U, skip bool, err error) {
	t := time.Now()
	u, err = fn(ctx, v)
	c.busy.Add(int64(time.Since(t)))
	if err != nil && errors.Is(err, ErrSkip) {
		c.skipped.Add(1)
		return u, true, nil
	}
	return u, false, err
}

// mapUnordered runs workers that each receive, compute and send; the last one to finish
// closes out (unless the pipeline failed).
func mapUnordered[T, U any](p *Pipeline, c *counters, in <-chan T, out chan U, workers int, fn func(context.Context, T) (U, error)) {
	var wg sync.WaitGroup
	var failed atomic.Bool // set before wg.Done, so the closer sees it
	work := func() error {
		for {
			v, ok, err := recv(p.ctx, in, c)
			if err != nil || !ok {
				return err
			}
			item := c.in.Load() - 1 // exact with one worker, approximate with several
			u, skip, err := call(p.ctx, c, fn, v)
			if err != nil {
				return c.wrap(item, err)
			}
			if skip {
				continue
			}
			if err := send(p.ctx, out, u, c); err != nil {
				return err
			}
		}
	}
	wg.Add(workers)
	for range workers {
		p.run(c, func() error {
			defer wg.Done()
			err := work()
			if err != nil {
				failed.Store(true)
			}
			return err
		})
	}
	p.run(c, func() error {
		wg.Wait()
		defer c.finish()
		if !failed.Load() {
			close(out)
		}
		return nil
	})
}

// result is one computed item of an ordered map, delivered through its own future channel.
type result[U any] struct {
	v    U
	item int64
	skip bool
	err  error
}

type job[T, U any] struct {
	v    T
	item int64
	res  chan result[U]
}

// mapOrdered keeps input order with a ring of reusable future channels: the dispatcher takes a
// free future, queues it in input order and hands the item with it to a worker; the emitter
// waits on the futures in queue order. The ring's size bounds the items in flight, and reusing
// the futures keeps the steady state free of allocations.
func mapOrdered[T, U any](p *Pipeline, c *counters, in <-chan T, out chan U, workers int, fn func(context.Context, T) (U, error)) {
	window := 2 * workers
	free := make(chan chan result[U], window)
	for range window {
		free <- make(chan result[U], 1)
	}
	order := make(chan chan result[U], window)
	jobs := make(chan job[T, U])

	var failed atomic.Bool // set before order is closed, so the emitter sees it
	dispatch := func() error {
		done := p.ctx.Done()
		for item := int64(0); ; item++ {
			v, ok, err := recv(p.ctx, in, c)
			if err != nil || !ok {
				return err
			}
			var res chan result[U]
			select {
			case res = <-free:
			case <-done:
				return p.cause()
			}
			order <- res // never blocks: order holds at most window futures
			select {
			case jobs <- job[T, U]{v: v, item: item, res: res}:
			case <-done:
				return p.cause()
			}
		}
	}
	p.run(c, func() error {
		err := dispatch()
		if err != nil {
			failed.Store(true)
		}
		close(jobs)
		close(order)
		return err
	})
	for range workers {
		p.run(c, func() error {
			for j := range jobs {
				u, skip, err := call(p.ctx, c, fn, j.v)
				j.res <- result[U]{v: u, item: j.item, skip: skip, err: err}
			}
			return nil
		})
	}
	p.run(c, func() error { // emitter
		defer c.finish()
		done := p.ctx.Done()
		for res := range order {
			var r result[U]
			select {
			case r = <-res:
			case <-done:
				return p.cause()
			}
			free <- res
			if r.err != nil {
				return c.wrap(r.item, r.err)
			}
			if r.skip {
				continue
			}
			if err := send(p.ctx, out, r.v, c); err != nil {
				return err
			}
		}
		if !failed.Load() { // else the dispatcher reports why it stopped
			close(out)
		}
		return nil
	})
}

// Batch starts a stage that groups consecutive items into slices of size items. The last,
// shorter batch is sent when keepPartial is true and dropped otherwise (as training wants).
// Each batch is a new slice that the consumer owns.
func Batch[T any](p *Pipeline, name string, in *Stream[T], size int, keepPartial bool) *Stream[[]T] {
	src := in.take(p)
	c := p.stage(name, 1)
	out := newStream[[]T](p, c, 1)
	p.run(c, func() error {
		defer c.finish()
		if size < 1 {
			return fmt.Errorf("batch size %d, want at least 1", size)
		}
		batch := make([]T, 0, size)
		for {
			v, ok, err := recv(p.ctx, src, c)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			batch = append(batch, v)
			if len(batch) == size {
				if err := send(p.ctx, out.ch, batch, c); err != nil {
					return err
				}
				batch = make([]T, 0, size)
			}
		}
		if len(batch) > 0 {
			if keepPartial {
				if err := send(p.ctx, out.ch, batch, c); err != nil {
					return err
				}
			} else {
				c.skipped.Add(int64(len(batch)))
			}
		}
		close(out.ch)
		return nil
	})
	return out
}

// Buffer starts a stage that lets up to n items wait between its upstream and downstream, so
// that a slow consumer step overlaps with production (prefetch). Its Stats.Queued shows how
// full the buffer is: near zero means the consumer is starved.
func Buffer[T any](p *Pipeline, name string, in *Stream[T], n int) *Stream[T] {
	src := in.take(p)
	c := p.stage(name, 1)
	out := newStream[T](p, c, n)
	p.run(c, func() error {
		defer c.finish()
		for {
			v, ok, err := recv(p.ctx, src, c)
			if err != nil {
				return err
			}
			if !ok {
				close(out.ch)
				return nil
			}
			if err := send(p.ctx, out.ch, v, c); err != nil {
				return err
			}
		}
	})
	return out
}

// Sink starts the final stage, calling fn on every item in order; fn's error stops the
// pipeline. Call Wait to learn how it ended.
func Sink[T any](p *Pipeline, name string, in *Stream[T], fn func(context.Context, T) error) {
	src := in.take(p)
	c := p.stage(name, 1)
	p.run(c, func() error {
		defer c.finish()
		for {
			v, ok, err := recv(p.ctx, src, c)
			if err != nil || !ok {
				return err
			}
			t := time.Now()
			err = fn(p.ctx, v)
			c.busy.Add(int64(time.Since(t)))
			if err != nil {
				return c.wrap(c.in.Load()-1, err)
			}
			c.out.Add(1)
		}
	})
}

// Receiver is a pull-style end of a pipeline, for a consumer that runs its own loop (such as a
// training loop). Its stats record as WaitIn how long the consumer stalled waiting for items,
// and as Busy the time it spent between calls to Next. A Receiver is used by one goroutine.
type Receiver[T any] struct {
	p    *Pipeline
	c    *counters
	ch   <-chan T
	last time.Time // when Next last returned
}

// Receive ends the pipeline with a Receiver named name.
func Receive[T any](p *Pipeline, name string, in *Stream[T]) *Receiver[T] {
	src := in.take(p)
	return &Receiver[T]{p: p, c: p.stage(name, 1), ch: src}
}

// Next returns the next item. At the end of the stream it waits for the pipeline and returns
// io.EOF, or the pipeline's first error (a *StageError) if it failed or was cancelled.
func (r *Receiver[T]) Next() (T, error) {
	if !r.last.IsZero() {
		r.c.busy.Add(int64(time.Since(r.last)))
	}
	v, ok, err := recv(r.p.ctx, r.ch, r.c)
	if err == nil && ok {
		r.c.out.Add(1)
		r.last = time.Now()
		return v, nil
	}
	r.c.finish()
	if err := r.p.Wait(); err != nil {
		return v, err
	}
	return v, io.EOF // the stream ended, or the owner called Stop
}

// All returns an iterator over the remaining items, for a range loop. When the pipeline fails
// the last pair carries its error; breaking out of the loop stops the pipeline (Wait then
// reports any error that came before the stop).
func (r *Receiver[T]) All() iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(v, err)
				return
			}
			if !yield(v, nil) {
				r.p.Stop()
				return
			}
		}
	}
}
