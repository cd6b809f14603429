package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// count emits 0..n-1.
func count(n int) func(context.Context, func(int) error) error {
	return func(_ context.Context, emit func(int) error) error {
		for i := range n {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}
}

// collect drains s into a slice with a sink and waits for the pipeline.
func collect[T any](p *Pipeline, s *Stream[T]) ([]T, error) {
	var got []T
	Sink(p, "collect", s, func(_ context.Context, v T) error {
		got = append(got, v)
		return nil
	})
	return got, p.Wait()
}

// jitter sleeps a random time up to max, to shuffle the workers' finishing order.
func jitter(r *rand.Rand, maxDelay time.Duration) {
	time.Sleep(time.Duration(r.Int64N(int64(maxDelay))))
}

func TestMapOrderWithRandomDelays(t *testing.T) {
	const n = 300
	want := make([]int, n)
	for i := range want {
		want[i] = i * i
	}
	for _, tc := range []struct {
		workers   int
		unordered bool
	}{{1, false}, {2, false}, {4, false}, {8, false}, {1, true}, {3, true}, {8, true}} {
		t.Run(fmt.Sprintf("workers=%d,unordered=%v", tc.workers, tc.unordered), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p := New(context.Background())
			src := Source(p, "src", count(n))
			sq := Map(p, "square", src, Options{Workers: tc.workers, Unordered: tc.unordered},
				func(_ context.Context, v int) (int, error) {
					r := rand.New(rand.NewPCG(uint64(v), 1))
					jitter(r, 300*time.Microsecond)
					return v * v, nil
				})
			got, err := collect(p, sq)
			if err != nil {
				t.Fatal(err)
			}
			if tc.unordered {
				slices.Sort(got)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d items, first %v; want %d in input order", len(got), got[:min(len(got), 8)], n)
			}
			st := p.Stats()[1]
			if st.In != n || st.Out != n || !st.Done || st.Workers != tc.workers {
				t.Errorf("stats %+v, want in=out=%d, done, workers %d", st, n, tc.workers)
			}
		})
	}
}

func TestMapSkip(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			p := New(context.Background())
			odd := Map(p, "odd", Source(p, "src", count(100)), Options{Workers: workers},
				func(_ context.Context, v int) (int, error) {
					if v%2 == 0 {
						return 0, fmt.Errorf("even %d: %w", v, ErrSkip)
					}
					return v, nil
				})
			got, err := collect(p, odd)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 50 || got[0] != 1 || got[49] != 99 || !slices.IsSorted(got) {
				t.Fatalf("got %v, want the 50 odd numbers in order", got)
			}
			if st := p.Stats()[1]; st.Skipped != 50 || st.In != 100 || st.Out != 50 {
				t.Errorf("stats %+v, want in 100 out 50 skipped 50", st)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	for _, tc := range []struct {
		n, size     int
		keepPartial bool
		wantSizes   []int
	}{
		{10, 4, false, []int{4, 4}},
		{10, 4, true, []int{4, 4, 2}},
		{8, 4, false, []int{4, 4}},
		{8, 4, true, []int{4, 4}},
		{3, 4, false, nil},
		{3, 4, true, []int{3}},
		{0, 4, true, nil},
		{5, 1, false, []int{1, 1, 1, 1, 1}},
	} {
		t.Run(fmt.Sprintf("n=%d,size=%d,keep=%v", tc.n, tc.size, tc.keepPartial), func(t *testing.T) {
			p := New(context.Background())
			got, err := collect(p, Batch(p, "batch", Source(p, "src", count(tc.n)), tc.size, tc.keepPartial))
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			next := 0
			for _, b := range got {
				sizes = append(sizes, len(b))
				for _, v := range b {
					if v != next {
						t.Fatalf("batches %v out of order", got)
					}
					next++
				}
			}
			if !slices.Equal(sizes, tc.wantSizes) {
				t.Fatalf("batch sizes %v, want %v", sizes, tc.wantSizes)
			}
			dropped := int64(tc.n - next)
			if st := p.Stats()[1]; st.Skipped != dropped {
				t.Errorf("batch stage skipped %d, want %d", st.Skipped, dropped)
			}
		})
	}
}

var errBoom = errors.New("boom")

// TestErrorFromEachStage checks that the first error stops everything, names its stage and
// item, and leaves no goroutine behind, for a failure in every kind of stage.
func TestErrorFromEachStage(t *testing.T) {
	failAt := func(stage string, at int) func(context.Context, int) (int, error) {
		return func(_ context.Context, v int) (int, error) {
			if v == at {
				return 0, fmt.Errorf("%s saw %d: %w", stage, v, errBoom)
			}
			return v, nil
		}
	}
	ok := func(_ context.Context, v int) (int, error) { return v, nil }
	for _, tc := range []struct {
		name      string
		build     func(p *Pipeline) *Stream[[]int]
		sink      func(context.Context, []int) error
		wantStage string
		wantItem  int64
		wantIs    error
	}{
		{
			name: "source",
			build: func(p *Pipeline) *Stream[[]int] {
				src := Source(p, "src", func(ctx context.Context, emit func(int) error) error {
					for i := range 50 {
						if err := emit(i); err != nil {
							return err
						}
					}
					return errBoom
				})
				return Batch(p, "batch", Map(p, "map", src, Options{Workers: 3}, ok), 4, true)
			},
			wantStage: "src", wantItem: -1, wantIs: errBoom,
		},
		{
			name: "ordered map",
			build: func(p *Pipeline) *Stream[[]int] {
				m := Map(p, "map", Source(p, "src", count(1000)), Options{Workers: 4}, failAt("map", 37))
				return Batch(p, "batch", m, 4, true)
			},
			wantStage: "map", wantItem: 37, wantIs: errBoom,
		},
		{
			name: "one-worker map",
			build: func(p *Pipeline) *Stream[[]int] {
				m := Map(p, "map", Source(p, "src", count(1000)), Options{}, failAt("map", 37))
				return Batch(p, "batch", m, 4, true)
			},
			wantStage: "map", wantItem: 37, wantIs: errBoom,
		},
		{
			name: "unordered map",
			build: func(p *Pipeline) *Stream[[]int] {
				m := Map(p, "map", Source(p, "src", count(1000)), Options{Workers: 4, Unordered: true}, failAt("map", 37))
				return Batch(p, "batch", m, 4, true)
			},
			wantStage: "map", wantItem: -2, wantIs: errBoom, // item position is approximate
		},
		{
			name: "batch",
			build: func(p *Pipeline) *Stream[[]int] {
				return Batch(p, "batch", Source(p, "src", count(1000)), 0, true)
			},
			wantStage: "batch", wantItem: -1,
		},
		{
			name: "buffer and sink",
			build: func(p *Pipeline) *Stream[[]int] {
				return Buffer(p, "prefetch", Batch(p, "batch", Source(p, "src", count(1000)), 4, true), 3)
			},
			sink: func(_ context.Context, b []int) error {
				if b[0] == 20 {
					return errBoom
				}
				return nil
			},
			wantStage: "sink", wantItem: 5, wantIs: errBoom,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p := New(context.Background())
			sink := tc.sink
			if sink == nil {
				sink = func(context.Context, []int) error { return nil }
			}
			Sink(p, "sink", tc.build(p), sink)
			err := p.Wait()
			var se *StageError
			if !errors.As(err, &se) {
				t.Fatalf("Wait = %v, want a *StageError", err)
			}
			if se.Stage != tc.wantStage || (tc.wantItem != -2 && se.Item != tc.wantItem) {
				t.Errorf("error at stage %q item %d, want %q item %d: %v", se.Stage, se.Item, tc.wantStage, tc.wantItem, err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if err := p.Wait(); err != se {
				t.Errorf("second Wait = %v, want the same error", err)
			}
		})
	}
}

// infinite emits 0, 1, 2, ... until the pipeline is cancelled.
func infinite(_ context.Context, emit func(int) error) error {
	for i := 0; ; i++ {
		if err := emit(i); err != nil {
			return err
		}
	}
}

func TestCancelMidStream(t *testing.T) {
	for _, opt := range []Options{{Workers: 1}, {Workers: 4}, {Workers: 4, Unordered: true}} {
		t.Run(fmt.Sprintf("%+v", opt), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ctx, cancel := context.WithCancel(context.Background())
			p := New(ctx)
			m := Map(p, "map", Source(p, "src", infinite), opt, func(ctx context.Context, v int) (int, error) {
				return v + 1, nil
			})
			var seen atomic.Int64
			Sink(p, "sink", Buffer(p, "prefetch", Batch(p, "batch", m, 8, false), 2),
				func(context.Context, []int) error {
					if seen.Add(1) == 20 {
						cancel()
					}
					return nil
				})
			err := p.Wait()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait = %v, want context.Canceled", err)
			}
			if seen.Load() < 20 {
				t.Errorf("sink saw %d batches before the cancel", seen.Load())
			}
		})
	}
}

// TestCancelDuringSlowWork cancels while every worker is inside a slow function that honours
// the context: Wait must return promptly and no worker may be left behind.
func TestCancelDuringSlowWork(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx)
	var started atomic.Int64
	m := Map(p, "slow", Source(p, "src", infinite), Options{Workers: 4}, func(ctx context.Context, v int) (int, error) {
		started.Add(1)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	Sink(p, "sink", m, func(context.Context, int) error { return nil })
	for started.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

func TestReceiver(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := New(context.Background())
	b := Batch(p, "batch", Map(p, "map", Source(p, "src", count(10)), Options{Workers: 2}, func(_ context.Context, v int) (int, error) {
		return -v, nil
	}), 3, true)
	r := Receive(p, "consumer", Buffer(p, "prefetch", b, 2))
	var got []int
	for {
		batch, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // consumer work, recorded as Busy
		got = append(got, batch...)
	}
	if want := []int{0, -1, -2, -3, -4, -5, -6, -7, -8, -9}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
	st := p.Stats()
	names := make([]string, len(st))
	for i, s := range st {
		names[i] = s.Stage
	}
	if want := []string{"src", "map", "batch", "prefetch", "consumer"}; !slices.Equal(names, want) {
		t.Fatalf("stage names %v, want %v", names, want)
	}
	c := st[4]
	if c.Out != 4 || c.In != 4 || !c.Done || c.Busy < 3*time.Millisecond {
		t.Errorf("consumer stats %+v, want 4 batches, done, busy ≥ 3ms", c)
	}
}

func TestReceiverStopEarly(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := New(context.Background())
	r := Receive(p, "consumer", Map(p, "map", Source(p, "src", infinite), Options{Workers: 3}, func(_ context.Context, v int) (int, error) {
		return v, nil
	}))
	for want := range 100 {
		v, err := r.Next()
		if err != nil || v != want {
			t.Fatalf("Next = %d, %v; want %d", v, err, want)
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop = %v, want nil", err)
	}
	for {
		if _, err := r.Next(); err != nil {
			if err != io.EOF {
				t.Fatalf("Next after Stop = %v, want io.EOF", err)
			}
			break
		}
	}
}

func TestReceiverError(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := New(context.Background())
	m := Map(p, "decode", Source(p, "src", count(100)), Options{Workers: 2}, func(_ context.Context, v int) (int, error) {
		if v == 50 {
			return 0, fmt.Errorf("key %d: %w", v, errBoom)
		}
		return v, nil
	})
	r := Receive(p, "consumer", m)
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var se *StageError
		if !errors.As(err, &se) || se.Stage != "decode" || se.Item != 50 || !errors.Is(err, errBoom) {
			t.Fatalf("Next = %v, want decode item 50 boom", err)
		}
		if want := "pipeline stage decode, item 50: key 50: boom"; err.Error() != want {
			t.Errorf("message %q, want %q", err.Error(), want)
		}
		break
	}
}

// TestStatsWhileRunning reads snapshots from another goroutine during a run (meaningful under
// -race) and checks the buffer's queue shows through.
func TestStatsWhileRunning(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := New(context.Background())
	release := make(chan struct{})
	buf := Buffer(p, "prefetch", Source(p, "src", count(50)), 5)
	Sink(p, "sink", buf, func(context.Context, int) error {
		<-release
		return nil
	})
	var st []Stats
	for {
		st = p.Stats()
		if st[1].Queued == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if st[1].QueueCap != 5 || st[1].Done || st[0].Done {
		t.Errorf("running snapshot %+v", st)
	}
	close(release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	st = p.Stats()
	for _, s := range st {
		if !s.Done || s.In != 50 {
			t.Errorf("final %v, want done with 50 in", s)
		}
	}
	if st[2].WaitIn <= 0 && st[1].WaitOut <= 0 {
		t.Errorf("no blocking recorded: %v", st)
	}
	if st[0].Rate() <= 0 || st[0].String() == "" {
		t.Errorf("rate %v", st[0].Rate())
	}
}

func TestStreamMisuse(t *testing.T) {
	p := New(context.Background())
	s := Source(p, "src", count(3))
	_, _ = collect(p, s)
	for _, tc := range []struct {
		name string
		p    *Pipeline
	}{{"twice", p}, {"other pipeline", New(context.Background())}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			Buffer(tc.p, "again", s, 1)
		})
	}
}

func TestReceiverAll(t *testing.T) {
	for _, stopAt := range []int{-1, 5} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p := New(context.Background())
			gen := count(20)
			if stopAt >= 0 {
				gen = infinite // only the break can end it
			}
			src := Source(p, "src", gen)
			r := Receive(p, "consumer", src)
			var got []int
			for v, err := range r.All() {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
				if len(got) == stopAt {
					break
				}
			}
			want := 20
			if stopAt >= 0 {
				want = stopAt
			}
			if len(got) != want || got[len(got)-1] != want-1 {
				t.Fatalf("got %v, want 0..%d", got, want-1)
			}
			if err := p.Wait(); err != nil {
				t.Fatalf("Wait = %v", err)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		p := New(context.Background())
		r := Receive(p, "consumer", Source(p, "src", func(_ context.Context, emit func(int) error) error {
			if err := emit(1); err != nil {
				return err
			}
			return errBoom
		}))
		var errs []error
		for _, err := range r.All() {
			errs = append(errs, err)
		}
		if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], errBoom) {
			t.Fatalf("errors %v, want [nil boom]", errs)
		}
	})
}
