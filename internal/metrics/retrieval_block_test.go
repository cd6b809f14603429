package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fullMatrixRanks is the definition retrievalRanks must meet: the whole NT×NI matrix of dot
// scores of the normalised rows, each text's image rank and each image's first caption rank
// read from a stable sort by descending score (ties: lower index first).
func fullMatrixRanks(images, texts []float32, dim int, textImage []int) (imageRanks, textRanks []int) {
	ni, nt := len(images)/dim, len(texts)/dim
	img, txt := make([]float32, len(images)), make([]float32, len(texts))
	for i := range ni {
		normalizeInto(img[i*dim:(i+1)*dim], images[i*dim:(i+1)*dim])
	}
	for t := range nt {
		normalizeInto(txt[t*dim:(t+1)*dim], texts[t*dim:(t+1)*dim])
	}
	s := make([]float32, nt*ni)
	for t := range nt {
		for i := range ni {
			s[t*ni+i] = dot(txt[t*dim:(t+1)*dim], img[i*dim:(i+1)*dim])
		}
	}
	order := func(n int, score func(int) float32) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch sa, sb := score(a), score(b); {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		return idx
	}
	imageRanks = make([]int, nt)
	for t := range nt {
		imageRanks[t] = slices.Index(order(ni, func(i int) float32 { return s[t*ni+i] }), textImage[t]) + 1
	}
	textRanks = make([]int, ni)
	for i := range ni {
		for p, t := range order(nt, func(t int) float32 { return s[t*ni+i] }) {
			if textImage[t] == i {
				textRanks[i] = p + 1
				break
			}
		}
	}
	return imageRanks, textRanks
}

// TestRetrievalBlocksEqualFullMatrix checks that the blocked, screened scan ranks exactly as
// the full score matrix does, at block sizes from 1 to more than the rows, on data full of
// exact ties (entries in {-1,0,1}, repeated rows) and of near ties (rows one ulp apart, where
// the float32 product and dot may disagree), with uncaptioned images.
func TestRetrievalBlocksEqualFullMatrix(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 1))
	type data struct {
		name          string
		images, texts []float32
		dim           int
		textImage     []int
		ni, nt        int
	}
	ternary := func(ni, dim int) data {
		d := data{name: fmt.Sprintf("ternary %d images dim %d", ni, dim), dim: dim, ni: ni}
		d.images = make([]float32, ni*dim)
		for i := range d.images {
			d.images[i] = float32(r.IntN(3) - 1)
		}
		for i := 0; i < ni-2; i++ { // the last two images have no caption
			for range 1 + r.IntN(3) {
				for range dim {
					d.texts = append(d.texts, float32(r.IntN(3)-1))
				}
				d.textImage = append(d.textImage, i)
			}
		}
		return d
	}
	nearTies := func(ni, dim int) data {
		d := data{name: fmt.Sprintf("near ties %d images dim %d", ni, dim), dim: dim, ni: ni}
		d.images = randn(r, ni*dim)
		for i := 1; i < ni; i += 3 { // every third image repeats the one before, a third of them nudged by an ulp
			copy(d.images[i*dim:(i+1)*dim], d.images[(i-1)*dim:i*dim])
			if i%2 == 0 {
				j := i*dim + r.IntN(dim)
				d.images[j] = math.Nextafter32(d.images[j], 2)
			}
		}
		for i := range ni - 1 {
			for range 2 {
				// a caption near its image: the image plus small noise, or the image exactly
				v := slices.Clone(d.images[i*dim : (i+1)*dim])
				if r.IntN(2) == 0 {
					for k := range v {
						v[k] += float32(r.NormFloat64() * 0.3)
					}
				}
				d.texts = append(d.texts, v...)
				d.textImage = append(d.textImage, i)
			}
		}
		return d
	}
	sets := []data{ternary(30, 3), ternary(17, 5), nearTies(40, 64)}
	for _, d := range sets {
		d.nt = len(d.textImage)
		r.Shuffle(d.nt, func(a, b int) {
			d.textImage[a], d.textImage[b] = d.textImage[b], d.textImage[a]
			for k := range d.dim {
				d.texts[a*d.dim+k], d.texts[b*d.dim+k] = d.texts[b*d.dim+k], d.texts[a*d.dim+k]
			}
		})
		wantImage, wantText := fullMatrixRanks(d.images, d.texts, d.dim, d.textImage)
		for _, b := range [][2]int{{1, 1}, {1, 7}, {3, 2}, {16, 5}, {d.nt + 5, d.ni + 5}, {retrievalTextBlock, retrievalImageBlock}} {
			gotImage, gotText := retrievalRanks(d.images, d.texts, d.dim, d.textImage, b[0], b[1])
			if !slices.Equal(gotImage, wantImage) {
				t.Errorf("%s, blocks %d×%d: image ranks\n got %v\nwant %v", d.name, b[0], b[1], gotImage, wantImage)
			}
			if !slices.Equal(gotText, wantText) {
				t.Errorf("%s, blocks %d×%d: text ranks\n got %v\nwant %v", d.name, b[0], b[1], gotText, wantText)
			}
		}
	}
}

// TestScreenMarginHolds checks the bound screenMargin promises on rows built to make a
// float32 product drift from dot: long rows of large and small values.
func TestScreenMarginHolds(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 2))
	for _, dim := range []int{1, 7, 512, 2048} {
		a, b := make([]float32, dim), make([]float32, dim)
		for trial := range 200 {
			for k := range dim {
				a[k] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(6)-3)))
				b[k] = a[k]
				if trial%2 == 1 {
					b[k] = float32(r.NormFloat64())
				}
			}
			normalizeInto(a, a)
			normalizeInto(b, b)
			var naive float32 // sequential float32 sum: the worst order a BLAS could use
			for k := range dim {
				naive += a[k] * b[k]
			}
			if gap := math.Abs(float64(naive) - float64(dot(a, b))); gap > screenMargin(dim) {
				t.Fatalf("dim %d: float32 sum %v, dot %v: gap %g exceeds the margin %g", dim, naive, dot(a, b), gap, screenMargin(dim))
			}
		}
	}
}
