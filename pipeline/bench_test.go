package pipeline

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkMap measures the per-item overhead of a Map stage (source -> map -> sink with
// trivial functions), i.e. channel hand-offs, ordering and counters.
func BenchmarkMap(b *testing.B) {
	for _, opt := range []Options{{Workers: 1}, {Workers: 2}, {Workers: 2, Unordered: true}} {
		name := fmt.Sprintf("workers=%d", opt.Workers)
		if opt.Unordered {
			name += ",unordered"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			p := New(context.Background())
			n := b.N
			m := Map(p, "map", Source(p, "src", count(n)), opt, func(_ context.Context, v int) (int, error) {
				return v + 1, nil
			})
			b.ResetTimer()
			Sink(p, "sink", m, func(context.Context, int) error { return nil })
			if err := p.Wait(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
