// Package metrics computes CLIP_benchmark's evaluation metrics on precomputed embeddings:
// zero-shot classification (acc1, acc5, mean_per_class_recall) and cross-modal retrieval
// (image_retrieval_recall@k, text_retrieval_recall@k), plus clipgo's mean and median ranks.
//
// It mirrors LAION-AI/CLIP_benchmark (clip_benchmark/metrics/zeroshot_classification.py and
// zeroshot_retrieval.py) so that a clipgo result can be compared with published numbers;
// the tests check it number for number against /work/shared/peers/clip_eval_ref.py.
//
// All embeddings are float32, row-major: a matrix [N,D] is a flat slice of N*D values.
// Inputs are checked (shapes, index ranges, finite values) and bad input returns an error.
//
// Ties: where CLIP_benchmark leaves ties to torch.topk / torch.argmax, this package ranks
// equal scores by index, lowest first (a stable sort by descending score). Every rank,
// recall, prediction and accuracy here follows that one ordering, so they agree with each
// other; they agree with torch except possibly on exact float32 ties.
package metrics

import (
	"fmt"
	"math"
)

// normEps is the lower bound on a norm used by torch.nn.functional.normalize (eps=1e-12):
// a zero vector normalises to zero instead of NaN, as in the reference.
const normEps = 1e-12

// normalizeInto writes x / max(||x||, 1e-12) into dst (len(dst) == len(x)), rounded to
// float32 like F.normalize on a float32 tensor; the norm is accumulated in float64.
func normalizeInto(dst, x []float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	n := math.Max(math.Sqrt(ss), normEps)
	for i, v := range x {
		dst[i] = float32(float64(v) / n)
	}
}

// dot returns the float32-rounded inner product of a and b (len(a) == len(b)), accumulated
// in float64, as one element of a float32 matrix product.
// Four partial sums break the dependency chain of one accumulator (about 2x faster).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return float32((s0 + s1) + (s2 + s3))
}

// checkMatrix verifies that m holds a whole number of rows of dim finite values and
// returns the number of rows. what names the matrix in errors.
func checkMatrix(what string, m []float32, dim int) (int, error) {
	if dim <= 0 {
		return 0, fmt.Errorf("%s: embedding dimension %d must be positive", what, dim)
	}
	if len(m)%dim != 0 {
		return 0, fmt.Errorf("%s: %d values are not a whole number of rows of dimension %d", what, len(m), dim)
	}
	if err := checkFinite(what, m, dim); err != nil {
		return 0, err
	}
	return len(m) / dim, nil
}

// checkFinite reports the first NaN or infinite value of m, naming its row and column.
func checkFinite(what string, m []float32, dim int) error {
	for i, v := range m {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: row %d column %d: non-finite value %v", what, i/dim, i%dim, v)
		}
	}
	return nil
}

// float32Mean returns hits/n rounded to float32 and widened back, which is exactly what
// CLIP_benchmark reports for a recall: (hits > 0).float().mean().item() divides a float32
// count by n in float32 (for n < 2^24 the float64 quotient rounds to the same float32).
// nan returns NaN, the value of a statistic over an empty set.
func nan() float64 { return math.NaN() }

func float32Mean(hits, n int) float64 {
	return float64(float32(float64(hits) / float64(n)))
}
