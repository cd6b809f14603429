package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
)

// heapSample is the heap once two collections have run (the second also frees the sync.Pool
// victim caches, so pooled scratch does not count as growth).
type heapSample struct {
	inuse, alloc uint64 // HeapInuse, HeapAlloc in bytes
	total        uint64 // TotalAlloc in bytes, cumulative
	goroutines   int
}

func settledHeap() heapSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapSample{inuse: m.HeapInuse, alloc: m.HeapAlloc, total: m.TotalAlloc, goroutines: runtime.NumGoroutine()}
}

// freeListBytes is the most the loader's free lists may hold between epochs, in bytes: image
// buffers [3,S,S] float32 for the samples that can be in flight at once, and whole batches
// [B,3,S,S] float32 for prefetch and hand-over. They start empty and fill as an epoch's peaks
// need more buffers, so the heap between epochs may legitimately rise by this much; anything
// beyond it is growth. The counts mirror data/loader's newPools; token buffers ([L] int32,
// 128 B each here) are left to slack.
func freeListBytes(cfg loader.Config) uint64 {
	img := uint64(3 * cfg.ImageSize * cfg.ImageSize * 4)
	images := uint64(2*(cfg.DecodeWorkers+cfg.TokenizeWorkers) + 2*cfg.BatchSize + 8)
	batches := uint64(cfg.Prefetch + 4)
	return images*img + batches*uint64(cfg.BatchSize)*img
}

// soakSlack absorbs what the runtime and the synthetic captions' handful of new cache entries
// move between two settled measurements (a few KiB to tens of KiB here).
const soakSlack = 256 << 10

// soakEpoch reads epoch ep to its end, releasing every batch, and returns its sample keys.
func soakEpoch(t *testing.T, l *loader.Loader, ep int) []string {
	t.Helper()
	e := l.Epoch(context.Background(), ep, 0)
	defer e.Close()
	var keys []string
	for {
		b, err := e.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("epoch %d: %v", ep, err)
		}
		checkBatch(t, b, l.Config().BatchSize, loader.Train)
		if b.Epoch != ep {
			t.Fatalf("epoch %d handed out a batch of epoch %d", ep, b.Epoch)
		}
		keys = append(keys, b.Keys...)
		b.Release()
	}
	if err := e.Close(); err != nil {
		t.Fatalf("epoch %d: Close after io.EOF = %v", ep, err)
	}
	if sk := e.Stats().Skipped; len(sk) != 0 {
		t.Fatalf("epoch %d skipped records of a clean dataset: %v", ep, sk)
	}
	return keys
}

// noLeak fails t if a goroutine started after ignore was taken is still running (goleak
// retries for a while, so goroutines already on their way out do not count).
func noLeak(t *testing.T, when string, ignore goleak.Option) {
	t.Helper()
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("after %s: %v", when, err)
	}
}

// waitPrefetchFull waits until the epoch's prefetch buffer is full, so that the stages behind
// it are blocked sending (the state a slow training step leaves them in).
func waitPrefetchFull(t *testing.T, e *loader.Epoch) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range e.Stats().Stages {
			if s.Stage == "prefetch" && s.QueueCap > 0 && s.Queued == s.QueueCap {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the prefetch buffer did not fill in 30 s with the consumer stopped: %v", e.Stats().Stages)
}

// TestSoakInputPipeline streams many training epochs of a prepared synthetic dataset through
// the input pipeline (8 decode, 4 tokenize and 4 read workers, the real tokenizer) and checks
// that memory stays flat and no goroutine outlives an epoch: epochs read to the end, one
// closed early and one cancelled (each while every stage is blocked on a full prefetch
// buffer), then a whole one again.
//
// Memory, as HeapInuse and HeapAlloc after two collections: every later epoch may exceed the
// second (the first warms the tokenizer's word cache) by at most the loader's free lists'
// bound plus slack; and at the end, dropping the loader must bring HeapAlloc back to within
// slack of its level before the first epoch, so nothing outside the loader (goroutines,
// caches, global state) kept anything from some 12,000 samples. With -short (the race run) it
// streams fewer, smaller epochs.
func TestSoakInputPipeline(t *testing.T) {
	epochs, n := 12, 1200
	if testing.Short() {
		epochs, n = 5, 500
	}
	ignore := goleak.IgnoreCurrent()
	dir := prepareSynthetic(t, n)
	m, err := shard.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, tok := splitFiles(t, dir, "train"), newTokenizer(t)
	l, err := loader.New(loader.Config{Files: train, Mode: loader.Train, BatchSize: 32, ImageSize: 32,
		ContextLen: 32, Tokenize: tok.TokenizeInto, Seed: 11, ReadWorkers: 4, DecodeWorkers: 8, TokenizeWorkers: 4,
		Augment: imageproc.Augment{Flip: true, Jitter: imageproc.Jitter{Prob: 0.8, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.Config()
	want := int(m.Splits["train"].Images) / cfg.BatchSize * cfg.BatchSize
	bound := freeListBytes(cfg)
	noLeak(t, "prepare", ignore)
	start := settledHeap()
	t.Logf("%d epochs of %d samples; free-list bound %s, slack %s; before: HeapInuse %s HeapAlloc %s goroutines %d",
		epochs, want, kib(bound), kib(soakSlack), kib(start.inuse), kib(start.alloc), start.goroutines)

	// measure records the settled heap after a step and checks it against the second epoch's.
	var heap []heapSample
	measure := func(what string) heapSample {
		t.Helper()
		h := settledHeap()
		prev := start
		if len(heap) > 0 {
			prev = heap[len(heap)-1]
		}
		heap = append(heap, h)
		t.Logf("%-21s HeapInuse %s HeapAlloc %s allocated %s goroutines %d", what+":",
			kib(h.inuse), kib(h.alloc), kib(h.total-prev.total), h.goroutines)
		if len(heap) > 2 {
			ref, limit := heap[1], bound+soakSlack
			if h.inuse > ref.inuse+limit || h.alloc > ref.alloc+limit {
				t.Errorf("%s: heap grew past epoch 1's by more than %s: HeapInuse %s -> %s, HeapAlloc %s -> %s",
					what, kib(limit), kib(ref.inuse), kib(h.inuse), kib(ref.alloc), kib(h.alloc))
			}
		}
		return h
	}

	var prevKeys []string
	for ep := range epochs {
		keys := soakEpoch(t, l, ep)
		if len(keys) != want {
			t.Fatalf("epoch %d gave %d samples, want %d", ep, len(keys), want)
		}
		if sorted := slices.Sorted(slices.Values(keys)); len(slices.Compact(sorted)) != want {
			t.Fatalf("epoch %d repeats a sample", ep)
		}
		if slices.Equal(keys, prevKeys) {
			t.Fatalf("epoch %d has the same order as epoch %d", ep, ep-1)
		}
		prevKeys = keys
		noLeak(t, fmt.Sprintf("epoch %d", ep), ignore)
		measure(fmt.Sprintf("epoch %d", ep))
	}

	// Closed early, with every stage blocked behind a full prefetch buffer.
	e := l.Epoch(context.Background(), epochs, 0)
	for range 3 {
		b, err := e.Next()
		if err != nil {
			t.Fatalf("early-closed epoch: %v", err)
		}
		b.Release()
	}
	waitPrefetchFull(t, e)
	if err := e.Close(); err != nil {
		t.Fatalf("Close mid-epoch = %v", err)
	}
	if _, err := e.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close = %v, want io.EOF", err)
	}
	noLeak(t, "Close mid-epoch", ignore)
	measure("closed mid-epoch")

	// Cancelled in the same state; the consumer then sees context.Canceled, after at most the
	// batches already made.
	ctx, cancel := context.WithCancel(context.Background())
	e = l.Epoch(ctx, epochs+1, 0)
	if b, err := e.Next(); err != nil {
		t.Fatalf("cancelled epoch: %v", err)
	} else {
		b.Release()
	}
	waitPrefetchFull(t, e)
	cancel()
	for {
		b, err := e.Next()
		if err == nil {
			b.Release()
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel = %v, want context.Canceled", err)
		}
		break
	}
	if err := e.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel = %v", err)
	}
	noLeak(t, "cancelled context", ignore)
	measure("cancelled")

	// The loader still serves a whole epoch after the aborted ones.
	if keys := soakEpoch(t, l, epochs+2); len(keys) != want {
		t.Fatalf("epoch after the aborted ones gave %d samples, want %d", len(keys), want)
	}
	noLeak(t, "the last epoch", ignore)
	withLoader := measure("whole epoch again")
	runtime.KeepAlive(l)

	// Without the loader (its free lists), the heap is back where it started.
	l, e = nil, nil
	h := settledHeap()
	t.Logf("loader dropped:       HeapInuse %s HeapAlloc %s; the loader held %s", kib(h.inuse), kib(h.alloc),
		kib(withLoader.alloc-min(withLoader.alloc, h.alloc)))
	if h.alloc > start.alloc+soakSlack {
		t.Errorf("HeapAlloc %s with the loader dropped, %s before the first epoch: something outside the loader kept %s",
			kib(h.alloc), kib(start.alloc), kib(h.alloc-start.alloc))
	}
	if held := withLoader.alloc - min(withLoader.alloc, h.alloc); held > bound+soakSlack {
		t.Errorf("the loader held %s between epochs, more than its free lists' bound %s", kib(held), kib(bound))
	}
	runtime.KeepAlive(tok)
}

// kib formats a byte count in KiB.
func kib(b uint64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
