package eval

import (
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/metrics"
)

// TestTopKEqualsFullSort: the running top k picks what a stable sort of every row's score
// picks (ties: lower row first), for k from 0 to more than the rows, on data full of ties.
func TestTopKEqualsFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 6))
	const rows, dim = 60, 3
	m := make([]float32, rows*dim)
	for i := range m {
		m[i] = float32(r.IntN(3) - 1)
	}
	for trial := range 20 {
		q := []float32{float32(r.IntN(3) - 1), float32(r.IntN(3) - 1), 0.5}
		all := make([]hit, rows)
		for i := range rows {
			var s float64
			for j, v := range m[i*dim : (i+1)*dim] {
				s += float64(v) * float64(q[j])
			}
			all[i] = hit{i, s}
		}
		sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
		for _, k := range []int{0, 1, 5, rows, rows + 3} {
			if got, want := topK(q, m, dim, k), all[:min(k, rows)]; !slices.Equal(got, want) {
				t.Fatalf("trial %d k %d: %v, want %v", trial, k, got, want)
			}
		}
	}
}

// BenchmarkRetrievalScale runs the retrieval metrics on RETRIEVAL_NI images (default 1,000)
// and 5 captions each, of RETRIEVAL_DIM (512) random values, with the BLAS this binary links
// (OpenBLAS), and reports pairs/s and the peak heap above the inputs. README "Measured on
// this machine" gives the command for 10k×50k.
func BenchmarkRetrievalScale(b *testing.B) {
	ni, dim := envInt("RETRIEVAL_NI", 1000), envInt("RETRIEVAL_DIM", 512)
	nt := 5 * ni
	r := rand.New(rand.NewPCG(19, 7))
	images, texts := make([]float32, ni*dim), make([]float32, nt*dim)
	for i := range images {
		images[i] = float32(r.NormFloat64())
	}
	textImage := make([]int, nt)
	for t := range nt {
		textImage[t] = t / 5
		for d := range dim { // a caption near its image
			texts[t*dim+d] = images[textImage[t]*dim+d] + float32(2*r.NormFloat64())
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() { // sample the heap while the metrics run
		var m runtime.MemStats
		var top uint64
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				top = max(top, m.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		if _, err := metrics.RetrievalMetrics(images, texts, dim, textImage, []int{1, 5, 10}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(ni)*float64(nt)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric(float64(int64(<-peak)-int64(before.HeapInuse))/(1<<20), "MiB-heap-above-inputs")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
