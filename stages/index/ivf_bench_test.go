//go:build annbench

package index

// The IVF measurement at scale (`make ann-bench`): ANN_N vectors (default 1,000,000) of width
// ANN_DIM (512) around ANN_CENTRES (1,000) random unit centres with Gaussian noise of random
// norm in ANN_NOISE=lo,hi (default [1.5, 2.5]) per centre — noisy enough that a vector's true
// neighbours spread over several lists: recall climbs from about 0.4 at one probe to 1 —
// ANN_QUERIES (1,000) held-out queries drawn the same way. It
// reports the build time, the index's size and the process's peak RSS, the query latency
// p50/p99 (one query at a time on one goroutine) and recall@10 against the exact scan for
// each nprobe in ANN_NPROBE (default 1,2,4,8,16,32), in memory and, for ANN_FILE_QUERIES queries,
// from the IVF file (lists read and CRC-checked as probed). It is behind a build tag: it takes
// minutes and GBs.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// scaleVectors draws n rows around the centres, each centre with its own noise norm.
func scaleVectors(r *rand.Rand, n, dim int, cent []float32, noise []float64) []float32 {
	out := make([]float32, n*dim)
	for i := range n {
		k := r.IntN(len(noise))
		s := noise[k] / math.Sqrt(float64(dim))
		for d := range dim {
			out[i*dim+d] = cent[k*dim+d] + float32(r.NormFloat64()*s)
		}
	}
	return out
}

// exactTopBatch returns, for each query, the k rows of largest searchCosine: a float32 matrix
// product (times 1/‖v‖) screens the top 4k per query, which are rescored in float64.
func exactTopBatch(vecs, queries []float32, dim, k int) [][]int {
	n, nq := len(vecs)/dim, len(queries)/dim
	inv := make([]float32, n) // the screen ranks by cosine: the product times 1/‖v‖
	for r := range n {
		inv[r] = invNorm(vecs[r*dim : (r+1)*dim])
	}
	const block = 2048
	workers := runtime.GOMAXPROCS(0)
	cand := make([][][]IVFHit, workers) // [worker][query] best 4k
	var wg sync.WaitGroup
	for w := range workers {
		cand[w] = make([][]IVFHit, nq)
		wg.Go(func() {
			tile := make([]float32, nq*block)
			for b0 := w * block; b0 < n; b0 += workers * block {
				m := min(block, n-b0)
				blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, nq, m, dim, 1, queries, dim, vecs[b0*dim:], dim, 0, tile, m)
				for q := range nq {
					top := cand[w][q]
					for j, s := range tile[q*m : (q+1)*m] {
						s *= inv[b0+j]
						if len(top) == 4*k && s <= top[len(top)-1].Score {
							continue
						}
						at, _ := slices.BinarySearchFunc(top, s, func(h IVFHit, s float32) int {
							if h.Score >= s {
								return -1
							}
							return 1
						})
						top = slices.Insert(top, at, IVFHit{Row: b0 + j, Score: s})
						if len(top) > 4*k {
							top = top[:4*k]
						}
					}
					cand[w][q] = top
				}
			}
		})
	}
	wg.Wait()
	out := make([][]int, nq)
	for q := range nq {
		qv := queries[q*dim : (q+1)*dim]
		var rows []int
		for w := range workers {
			for _, h := range cand[w][q] {
				rows = append(rows, h.Row)
			}
		}
		slices.Sort(rows)
		scores := make([]float64, len(rows))
		for i, r := range rows {
			scores[i] = searchCosine(qv, vecs[r*dim:(r+1)*dim])
		}
		for _, i := range searchTopK(scores, k) {
			out[q] = append(out[q], rows[i])
		}
	}
	return out
}

func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10 // KiB on Linux
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func TestANNScale(t *testing.T) {
	n, dim := envInt("ANN_N", 1_000_000), envInt("ANN_DIM", 512)
	centres, nq := envInt("ANN_CENTRES", 1000), envInt("ANN_QUERIES", 1000)
	fileQueries := envInt("ANN_FILE_QUERIES", 200)
	var probes []int
	for _, p := range strings.Split(cmpOr(os.Getenv("ANN_NPROBE"), "1,2,4,8,16,32"), ",") {
		if v, err := strconv.Atoi(p); err == nil && v > 0 {
			probes = append(probes, v)
		}
	}
	const k = 10
	t.Logf("load before: %s; GOMAXPROCS %d; BLAS %T", loadavg(), runtime.GOMAXPROCS(0), blas32.Implementation())
	r := rand.New(rand.NewPCG(19, 1000))
	cent := make([]float32, centres*dim) // random unit centres
	for i := range cent {
		cent[i] = float32(r.NormFloat64())
	}
	for i := range centres {
		unitInto(cent[i*dim:(i+1)*dim], cent[i*dim:(i+1)*dim])
	}
	lo, hi := 1.5, 2.5
	if f := strings.Split(os.Getenv("ANN_NOISE"), ","); len(f) == 2 {
		lo, _ = strconv.ParseFloat(f[0], 64)
		hi, _ = strconv.ParseFloat(f[1], 64)
	}
	noise := make([]float64, centres)
	for i := range noise {
		noise[i] = lo + (hi-lo)*r.Float64()
	}
	t.Logf("noise norm per centre uniform in [%g, %g]", lo, hi)
	start := time.Now()
	vecs := scaleVectors(r, n, dim, cent, noise)
	queries := scaleVectors(r, nq, dim, cent, noise)
	t.Logf("data: %d×%d vectors (%d MiB), %d queries, %d centres, generated in %s", n, dim, n*dim*4>>20, nq, centres, time.Since(start).Round(time.Millisecond))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start = time.Now()
	x, err := BuildIVF(context.Background(), vecs, dim, IVFOptions{Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	size := 4*len(x.Centroids) + 8*len(x.Offsets) + 4*len(x.Rows) + 4*len(x.InvNorms) + 4*len(x.Vectors)
	t.Logf("build: %d lists in %s; index %d MiB in memory (heap +%d MiB); peak RSS so far %d MiB",
		x.Lists(), build.Round(time.Millisecond), size>>20, (int64(after.HeapInuse)-int64(before.HeapInuse))>>20, maxRSS()>>20)

	start = time.Now()
	truth := exactTopBatch(vecs, queries, dim, k)
	exact := time.Since(start)
	t.Logf("exact top-%d of %d queries (float32 product screen, float64 rescoring, %d goroutines): %s, %.1f ms/query",
		k, nq, runtime.GOMAXPROCS(0), exact.Round(time.Millisecond), float64(exact.Milliseconds())/float64(nq))

	measure := func(s *IVFSearcher, nprobe, queriesN int) (float64, []time.Duration) {
		found := 0
		lat := make([]time.Duration, queriesN)
		for q := range queriesN {
			qv := queries[q*dim : (q+1)*dim]
			t0 := time.Now()
			hits, err := s.Search(qv, k, nprobe)
			lat[q] = time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				if slices.Contains(truth[q], h.Row) {
					found++
				}
			}
		}
		return float64(found) / float64(queriesN*k), lat
	}
	s := x.Searcher()
	measure(s, probes[0], min(nq, 50)) // warm up
	var table strings.Builder
	fmt.Fprintf(&table, "| nprobe | recall@10 | p50 | p99 | (in memory, %d queries, one goroutine) |\n|---|---|---|---|---|\n", nq)
	for _, p := range probes {
		rec, lat := measure(s, p, nq)
		fmt.Fprintf(&table, "| %d | %.3f | %.2f ms | %.2f ms | |\n", p, rec, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)))
	}
	t.Logf("in memory:\n%s", table.String())

	// From the file, as clipgo search probes it.
	path := filepath.Join(t.TempDir(), "scale.parquet.ivf")
	start = time.Now()
	if err := WriteIVF(path, dim, n, [32]byte{}, []string{ColImageEmbedding}, []*IVF{x}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	write := time.Since(start)
	start = time.Now()
	v, err := OpenIVF(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	open := time.Since(start)
	fs := v.Section(ColImageEmbedding).Searcher()
	fmt.Fprintf(&table, "\nfrom the file (%d MiB, written in %s, opened in %s; %d queries, page cache warm after the first):\n",
		st.Size()>>20, write.Round(time.Millisecond), open.Round(time.Millisecond), fileQueries)
	for _, p := range probes {
		rec, lat := measure(fs, p, min(nq, fileQueries))
		fmt.Fprintf(&table, "| %d | %.3f | %.2f ms | %.2f ms | |\n", p, rec, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)))
	}
	t.Logf("results:\n%s", table.String())
	t.Logf("peak RSS %d MiB; load after: %s", maxRSS()>>20, loadavg())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
