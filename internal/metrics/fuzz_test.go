package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// FuzzRetrievalMetrics feeds arbitrary shapes, indices and values (including non-finite
// ones) and checks that RetrievalMetrics never panics and that its results are consistent:
// ranks in range, recall = fraction of ranks ≤ k, non-decreasing in k.
func FuzzRetrievalMetrics(f *testing.F) {
	f.Add(uint8(2), uint8(3), uint8(1), []byte{1, 0, 0, 1, 1, 0, 0, 1, 1, 1}, []byte{0, 1, 1})
	f.Add(uint8(3), uint8(2), uint8(3), []byte{0, 0, 0, 0, 0, 0, 9, 9, 9, 9}, []byte{2, 0})
	f.Add(uint8(0), uint8(1), uint8(1), []byte{}, []byte{5})
	f.Add(uint8(1), uint8(1), uint8(0), []byte{0x7f, 0x80}, []byte{0})
	f.Fuzz(func(t *testing.T, dim, k1, k2 uint8, vals, index []byte) {
		d := int(dim % 8)
		values := make([]float32, len(vals))
		for i, b := range vals {
			values[i] = float32(int8(b))
			if b == 0x7f {
				values[i] = float32(math.Inf(1))
			}
		}
		nt := len(index)
		if d > 0 && nt*d > len(values) {
			nt = len(values) / d
		}
		texts := values[:nt*max(d, 0)]
		images := values[len(texts):]
		textImage := make([]int, nt)
		for i := range textImage {
			textImage[i] = int(int8(index[i]))
		}
		ks := []int{int(k1 % 6), int(k2 % 6)}
		res, err := RetrievalMetrics(images, texts, d, textImage, ks)
		if err != nil {
			return
		}
		ni := len(images) / d
		for tx, r := range res.ImageRanks {
			if r < 1 || r > ni {
				t.Fatalf("text %d: image rank %d outside [1,%d]", tx, r, ni)
			}
		}
		for i, r := range res.TextRanks {
			if r < 0 || r > nt {
				t.Fatalf("image %d: text rank %d outside [0,%d]", i, r, nt)
			}
		}
		for _, k := range ks {
			if res.ImageRecall[k] != float32Mean(countAtMost(res.ImageRanks, k), nt) ||
				res.TextRecall[k] != float32Mean(countAtMost(res.TextRanks, k), ni) {
				t.Fatalf("recall@%d inconsistent with ranks", k)
			}
		}
		if a, b := min(ks[0], ks[1]), max(ks[0], ks[1]); res.ImageRecall[a] > res.ImageRecall[b] || res.TextRecall[a] > res.TextRecall[b] {
			t.Fatalf("recall decreases from k=%d to k=%d", a, b)
		}
	})
}

// FuzzClassify checks that Classify never panics on arbitrary logits and labels and that
// its statistics stay in [0,1] and agree with its confusion matrix.
func FuzzClassify(f *testing.F) {
	f.Add(uint8(3), []byte{1, 2, 3, 3, 2, 1}, []byte{0, 2})
	f.Add(uint8(6), []byte{0, 0, 0, 0, 0, 0}, []byte{5})
	f.Add(uint8(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, classes uint8, vals, labelBytes []byte) {
		logits := make([]float32, len(vals))
		for i, b := range vals {
			logits[i] = float32(int8(b))
		}
		labels := make([]int, len(labelBytes))
		for i, b := range labelBytes {
			labels[i] = int(int8(b))
		}
		res, err := Classify(logits, labels, int(classes%10))
		if err != nil {
			return
		}
		hits, total := 0, 0
		for c, row := range res.Confusion {
			hits += row[c]
			for _, n := range row {
				total += n
			}
		}
		if total != len(labels) || res.Acc1 != float64(hits)/float64(len(labels)) {
			t.Fatalf("acc1 %v disagrees with the confusion matrix %v", res.Acc1, res.Confusion)
		}
		for name, v := range res.Metrics() {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s = %v outside [0,1]", name, v)
			}
		}
		if res.HasAcc5 && res.Acc5 < res.Acc1 {
			t.Fatalf("acc5 %v < acc1 %v", res.Acc5, res.Acc1)
		}
	})
}

// BenchmarkRetrievalMetrics scores 1000 images against 5000 captions of dimension 256
// (a Flickr-sized test split); pairs/s counts score-matrix entries.
func BenchmarkRetrievalMetrics(b *testing.B) {
	const ni, capt, dim = 1000, 5, 256
	r := rand.New(rand.NewPCG(1, 2))
	images := randn(r, ni*dim)
	texts := randn(r, ni*capt*dim)
	textImage := make([]int, ni*capt)
	for t := range textImage {
		textImage[t] = t / capt
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := RetrievalMetrics(images, texts, dim, textImage, []int{1, 5, 10}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ni*ni*capt)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkZeroShot builds a 1000-class, 80-template classifier of dimension 512 (ImageNet
// with OpenAI's templates) and scores 1000 images with it.
func BenchmarkZeroShot(b *testing.B) {
	const classes, templates, dim, n = 1000, 80, 512, 1000
	r := rand.New(rand.NewPCG(1, 2))
	classEmb := make([][][]float32, classes)
	for c := range classEmb {
		classEmb[c] = make([][]float32, templates)
		for t := range classEmb[c] {
			classEmb[c][t] = randn(r, dim)
		}
	}
	images := randn(r, n*dim)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(classes)
	}
	b.ResetTimer()
	for b.Loop() {
		w, _, err := ZeroShotClassifier(classEmb)
		if err != nil {
			b.Fatal(err)
		}
		logits, err := ZeroShotLogits(images, n, dim, w, classes)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Classify(logits, labels, classes); err != nil {
			b.Fatal(err)
		}
	}
}
