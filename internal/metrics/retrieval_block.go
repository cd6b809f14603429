package metrics

import (
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Block sizes of the retrieval scan. A worker scores retrievalTextBlock captions against
// retrievalImageBlock images with one float32 matrix product (a 1 MiB tile), so the scan
// holds, besides the inputs and one normalised copy of the images, a few blocks and one
// counter per image per worker: memory grows with the block, never with images × captions.
const (
	retrievalTextBlock  = 256
	retrievalImageBlock = 1024
)

// screenMargin bounds the gap between a float32 matrix product's entry and dot (the score
// every rank is defined by) for two L2-normalised rows of width dim. The product is within
// γ_dim·Σ|aᵢbᵢ| ≤ dim·2⁻²⁴·(1+O(dim·2⁻²⁴)) of the exact inner product whatever the BLAS's
// summation order or use of FMA (Higham, Accuracy and Stability, §3.1), and dot is the
// float64 sum (error ~dim·2⁻⁵³) rounded to float32 (half an ulp, ≤ 2⁻²⁵ below 1). The margin
// doubles that: (dim+8)·2⁻²³.
func screenMargin(dim int) float64 { return (float64(dim) + 8) * 0x1p-23 }

// retrievalRanks returns each text's 1-based image rank and each image's 1-based best-caption
// rank (0 without captions) as defined by RetrievalMetrics: scores are dot of the normalised
// rows, ties broken by the lower index.
//
// Scores are computed block by block (tb texts × ib images) with a float32 matrix product,
// which is fast but not bit-equal to dot. It is used only as a screen: an entry more than
// screenMargin above (below) a reference score is certainly ahead of (behind) it; the few
// within the margin are rescored with dot and compared exactly. So the ranks are those of the
// full matrix of dot scores, to the last tie, at any block size (the tests check this).
func retrievalRanks(images, texts []float32, dim int, textImage []int, tb, ib int) (imageRanks, textRanks []int) {
	ni, nt := len(images)/dim, len(texts)/dim
	img := make([]float32, len(images))
	for i := range ni {
		normalizeInto(img[i*dim:(i+1)*dim], images[i*dim:(i+1)*dim])
	}
	// best[i], bestText[i]: score and index of image i's first caption in image→text order
	// (highest score, lowest index on ties); bestText -1 if it has none.
	// pos[t] is the score of text t with its own image.
	best := make([]float32, ni)
	bestText := make([]int, ni)
	for i := range bestText {
		bestText[i] = -1
	}
	pos := make([]float32, nt)
	row := make([]float32, dim)
	for t, i := range textImage {
		normalizeInto(row, texts[t*dim:(t+1)*dim])
		pos[t] = dot(row, img[i*dim:(i+1)*dim])
		if bestText[i] < 0 || pos[t] > best[i] {
			best[i], bestText[i] = pos[t], t
		}
	}

	tb, ib = max(1, min(tb, nt)), max(1, min(ib, ni))
	blocks := (nt + tb - 1) / tb
	workers := min(runtime.GOMAXPROCS(0), blocks)
	margin := screenMargin(dim)
	imageRanks = make([]int, nt)
	// before[w][i] counts the texts ahead of image i's best caption among worker w's blocks.
	before := make([][]int, workers)
	var next atomic.Int64 // the next text block to take: workers stay busy on a shared machine
	var wg sync.WaitGroup
	for w := range workers {
		before[w] = make([]int, ni)
		wg.Go(func() {
			ahead := before[w]
			txt := make([]float32, tb*dim)
			tile := make([]float32, tb*ib)
			for {
				b := int(next.Add(1)) - 1
				if b >= blocks {
					return
				}
				t0, t1 := b*tb, min((b+1)*tb, nt)
				for t := t0; t < t1; t++ {
					normalizeInto(txt[(t-t0)*dim:(t-t0+1)*dim], texts[t*dim:(t+1)*dim])
				}
				for t := t0; t < t1; t++ {
					imageRanks[t] = 1
				}
				for i0 := 0; i0 < ni; i0 += ib {
					m := min(ib, ni-i0)
					blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, t1-t0, m, dim, 1,
						txt, dim, img[i0*dim:], dim, 0, tile, m)
					for r := range t1 - t0 {
						t := t0 + r
						trow := txt[r*dim : (r+1)*dim]
						own, p := textImage[t], pos[t]
						lo, hi := float64(p)-margin, float64(p)+margin
						rank := 0
						for c, g32 := range tile[r*m : (r+1)*m] {
							i, g := i0+c, float64(g32)
							// text→image: is image i ahead of text t's own image?
							if g > hi {
								rank++
							} else if g >= lo {
								if s := dot(trow, img[i*dim:(i+1)*dim]); s > p || (s == p && i < own) {
									rank++
								}
							}
							// image→text: is text t ahead of image i's best caption?
							if bestText[i] < 0 {
								continue
							}
							if bb := float64(best[i]); g > bb+margin {
								ahead[i]++
							} else if g >= bb-margin {
								if s := dot(trow, img[i*dim:(i+1)*dim]); s > best[i] || (s == best[i] && t < bestText[i]) {
									ahead[i]++
								}
							}
						}
						imageRanks[t] += rank
					}
				}
			}
		})
	}
	wg.Wait()
	textRanks = make([]int, ni)
	for i := range textRanks {
		if bestText[i] < 0 {
			continue
		}
		textRanks[i] = 1
		for _, ahead := range before {
			textRanks[i] += ahead[i]
		}
	}
	return imageRanks, textRanks
}
