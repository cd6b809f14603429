package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// f32 is how CLIP_benchmark reports a retrieval recall: count/n rounded to float32.
func f32(x float64) float64 { return float64(float32(x)) }

func TestZeroShotHandExamples(t *testing.T) {
	// The reference's self-test example: class c has templates e_c ± 0.5 e_{c+1}, so the
	// classifier is exactly the identity and logits rank classes by image components.
	const C = 6
	classEmb := make([][][]float32, C)
	for c := range classEmb {
		plus, minus := make([]float32, C), make([]float32, C)
		plus[c], minus[c] = 1, 1
		plus[(c+1)%C], minus[(c+1)%C] = 0.5, -0.5
		classEmb[c] = [][]float32{plus, minus}
	}
	images := [][]float32{
		{6, 5, 4, 3, 2, 1}, // y=0 pred 0              top1 hit
		{6, 5, 4, 3, 2, 1}, // y=1 pred 0, 1 at rank 2 top5 hit
		{1, 2, 9, 3, 4, 5}, // y=2 pred 2              top1 hit
		{6, 5, 4, 1, 3, 2}, // y=3 pred 0, 3 at rank 6 miss
		{1, 2, 3, 4, 9, 5}, // y=4 pred 4              top1 hit
		{9, 1, 2, 3, 4, 5}, // y=5 pred 0, 5 at rank 2 top5 hit
		{1, 9, 2, 3, 4, 5}, // y=0 pred 1, 0 at rank 6 miss
		{2, 9, 1, 3, 4, 5}, // y=1 pred 1              top1 hit
		{9, 1, 2, 3, 4, 5}, // y=0 pred 0              top1 hit
	}
	labels := []int{0, 1, 2, 3, 4, 5, 0, 1, 0}

	w, dim, err := ZeroShotClassifier(classEmb)
	if err != nil {
		t.Fatal(err)
	}
	if dim != C {
		t.Fatalf("dim = %d, want %d", dim, C)
	}
	for d := 0; d < C; d++ {
		for c := 0; c < C; c++ {
			want := float32(0)
			if d == c {
				want = 1
			}
			if w[d*C+c] != want {
				t.Fatalf("weights[%d,%d] = %v, want %v (identity)", d, c, w[d*C+c], want)
			}
		}
	}

	cases := []struct {
		name               string
		classes            int
		labels             []int
		acc1, acc5, recall float64
		hasAcc5            bool
		predictions        []int
	}{
		{"6 classes", 6, labels, 5. / 9, 7. / 9, 19. / 36, true, []int{0, 0, 2, 0, 4, 0, 1, 1, 0}},
		// First 4 dims, identity classifier: per class c0 3/5, c1 1/2, c2 1, c3 0.
		{"4 classes (no acc5)", 4, []int{0, 1, 2, 3, 0, 0, 0, 1, 0}, 5. / 9, math.NaN(), 0.525, false, []int{0, 0, 2, 0, 3, 0, 1, 1, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			weights, imgs := w, flatten(images)
			if tc.classes != C {
				weights, imgs = identity(tc.classes), nil
				for _, im := range images {
					imgs = append(imgs, im[:tc.classes]...)
				}
			}
			logits, err := ZeroShotLogits(imgs, len(images), tc.classes, weights, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Classify(logits, tc.labels, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if got.Acc1 != tc.acc1 || got.HasAcc5 != tc.hasAcc5 || got.MeanPerClassRecall != tc.recall {
				t.Errorf("acc1 %v hasAcc5 %v recall %v, want %v %v %v", got.Acc1, got.HasAcc5, got.MeanPerClassRecall, tc.acc1, tc.hasAcc5, tc.recall)
			}
			if tc.hasAcc5 && got.Acc5 != tc.acc5 || !tc.hasAcc5 && !math.IsNaN(got.Acc5) {
				t.Errorf("acc5 = %v, want %v", got.Acc5, tc.acc5)
			}
			if _, ok := got.Metrics()["acc5"]; ok != tc.hasAcc5 {
				t.Errorf("Metrics() has acc5 = %v, want %v", ok, tc.hasAcc5)
			}
			if !slices.Equal(got.Predictions, tc.predictions) {
				t.Errorf("predictions %v, want %v", got.Predictions, tc.predictions)
			}
		})
	}
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func identity(n int) []float32 {
	m := make([]float32, n*n)
	for i := 0; i < n; i++ {
		m[i*n+i] = 1
	}
	return m
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name        string
		classes     int
		logits      [][]float32
		labels      []int
		acc1        float64
		acc5        float64 // NaN: absent
		recall      float64
		predictions []int
		confusion   [][]int
	}{
		{
			name:    "perfect, 2 classes",
			classes: 2, logits: [][]float32{{1, 0}, {0, 1}, {3, -1}},
			labels: []int{0, 1, 0}, acc1: 1, acc5: math.NaN(), recall: 1,
			predictions: []int{0, 1, 0}, confusion: [][]int{{2, 0}, {0, 1}},
		},
		{
			// Class 2 never occurs in the labels but is predicted once: it is left out of the
			// mean (recall c0 1/2, c1 1).
			name:    "class absent from labels",
			classes: 3, logits: [][]float32{{2, 1, 0}, {0, 1, 2}, {0, 5, 1}},
			labels: []int{0, 0, 1}, acc1: 2. / 3, acc5: math.NaN(), recall: 0.75,
			predictions: []int{0, 2, 1}, confusion: [][]int{{1, 0, 1}, {0, 1, 0}, {0, 0, 0}},
		},
		{
			// Equal logits: the lowest index wins, so label 2 has rank 3 (acc5 hit), label 6
			// rank 7 (miss).
			name:    "ties broken by index, 7 classes",
			classes: 7, logits: [][]float32{{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 0, 0}},
			labels: []int{0, 2, 6}, acc1: 1. / 3, acc5: 2. / 3, recall: 1. / 3,
			predictions: []int{0, 0, 0},
		},
		{
			name:    "label at rank 5 and 6",
			classes: 6, logits: [][]float32{{6, 5, 4, 3, 2, 1}, {6, 5, 4, 3, 2, 1}},
			labels: []int{4, 5}, acc1: 0, acc5: 0.5, recall: 0,
			predictions: []int{0, 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Classify(flatten(tc.logits), tc.labels, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			m := got.Metrics()
			if m["acc1"] != tc.acc1 || m["mean_per_class_recall"] != tc.recall {
				t.Errorf("metrics %v, want acc1 %v mean_per_class_recall %v", m, tc.acc1, tc.recall)
			}
			if a5, ok := m["acc5"]; math.IsNaN(tc.acc5) == ok || ok && a5 != tc.acc5 {
				t.Errorf("acc5 = %v (present %v), want %v", a5, ok, tc.acc5)
			}
			if !slices.Equal(got.Predictions, tc.predictions) {
				t.Errorf("predictions %v, want %v", got.Predictions, tc.predictions)
			}
			if tc.confusion != nil && !slices.EqualFunc(got.Confusion, tc.confusion, slices.Equal) {
				t.Errorf("confusion %v, want %v", got.Confusion, tc.confusion)
			}
		})
	}
}

func TestRetrievalHandExamples(t *testing.T) {
	// The reference's self-test example: text rows hold 10·(score with img0, img1, img2) and a
	// padding component making every norm 10.
	rows := [][]float64{{5, 4, 1}, {2, 6, 3}, {6, 5, 2.8}, {1, 7, 0}, {3, 0.5, 2.5}}
	var refTexts []float32
	for _, r := range rows {
		ss := 0.0
		for _, v := range r {
			refTexts = append(refTexts, float32(v))
			ss += v * v
		}
		refTexts = append(refTexts, float32(math.Sqrt(100-ss)))
	}
	eye4 := []float32{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}

	cases := []struct {
		name                  string
		images, texts         []float32
		dim                   int
		textImage, ks         []int
		imageRecall           []float64 // per k
		textRecall            []float64
		imageRanks, textRanks []int
		imgMean, imgMed       float64
		txtMean, txtMed       float64
	}{
		{
			name: "reference example", images: eye4, texts: refTexts, dim: 4,
			textImage: []int{0, 0, 1, 1, 2}, ks: []int{1, 2, 3},
			imageRecall: []float64{f32(.4), f32(.8), 1}, textRecall: []float64{f32(1. / 3), f32(2. / 3), 1},
			imageRanks: []int{1, 3, 2, 1, 2}, textRanks: []int{2, 1, 3},
			imgMean: 1.8, imgMed: 2, txtMean: 2, txtMed: 2,
		},
		{
			name: "perfect", images: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, dim: 3,
			texts:     []float32{2, 0, 0, 0, 3, 0, 0, 0, 1, 1, 0, 0.1},
			textImage: []int{0, 1, 2, 0}, ks: []int{1},
			imageRecall: []float64{1}, textRecall: []float64{1},
			imageRanks: []int{1, 1, 1, 1}, textRanks: []int{1, 1, 1},
			imgMean: 1, imgMed: 1, txtMean: 1, txtMed: 1,
		},
		{
			// Text 2 (of image 2) points mostly at image 0: its image ranks 2nd. Image 2 still
			// finds text 2 first (the only text with a component on it).
			name: "one wrong answer", images: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, dim: 3,
			texts:     []float32{1, 0, 0, 0, 1, 0, 1, 0, 0.1},
			textImage: []int{0, 1, 2}, ks: []int{1, 2},
			imageRecall: []float64{f32(2. / 3), 1}, textRecall: []float64{1, 1},
			imageRanks: []int{1, 1, 2}, textRanks: []int{1, 1, 1},
			imgMean: 4. / 3, imgMed: 1, txtMean: 1, txtMed: 1,
		},
		{
			// Image 2 has no caption: a miss for text retrieval, left out of its ranks.
			name: "uncaptioned image", images: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}, dim: 3,
			texts:     []float32{1, 0, 0, 0, 1, 0},
			textImage: []int{0, 1}, ks: []int{1, 2},
			imageRecall: []float64{1, 1}, textRecall: []float64{f32(2. / 3), f32(2. / 3)},
			imageRanks: []int{1, 1}, textRanks: []int{1, 1, 0},
			imgMean: 1, imgMed: 1, txtMean: 1, txtMed: 1,
		},
		{
			// All scores equal: ties go to the lowest index. Text t of image i ranks its image
			// i+1; image i's first caption is its lowest-index one.
			name: "all tied", images: []float32{1, 1, 2, 2, 3, 3}, dim: 2,
			texts:     []float32{1, 1, 1, 1, 1, 1, 1, 1},
			textImage: []int{2, 0, 1, 0}, ks: []int{1, 2},
			imageRecall: []float64{f32(.5), f32(.75)}, textRecall: []float64{f32(1. / 3), f32(2. / 3)},
			imageRanks: []int{3, 1, 2, 1}, textRanks: []int{2, 3, 1},
			imgMean: 1.75, imgMed: 1.5, txtMean: 2, txtMed: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RetrievalMetrics(tc.images, tc.texts, tc.dim, tc.textImage, tc.ks)
			if err != nil {
				t.Fatal(err)
			}
			for j, k := range tc.ks {
				if got.ImageRecall[k] != tc.imageRecall[j] || got.TextRecall[k] != tc.textRecall[j] {
					t.Errorf("recall@%d: image %v text %v, want %v %v", k, got.ImageRecall[k], got.TextRecall[k], tc.imageRecall[j], tc.textRecall[j])
				}
			}
			if !slices.Equal(got.ImageRanks, tc.imageRanks) || !slices.Equal(got.TextRanks, tc.textRanks) {
				t.Errorf("ranks image %v text %v, want %v %v", got.ImageRanks, got.TextRanks, tc.imageRanks, tc.textRanks)
			}
			m := got.Metrics()
			want := map[string]float64{
				"image_retrieval_mean_rank": tc.imgMean, "image_retrieval_median_rank": tc.imgMed,
				"text_retrieval_mean_rank": tc.txtMean, "text_retrieval_median_rank": tc.txtMed,
			}
			for j, k := range tc.ks {
				want["image_retrieval_recall@"+strconv.Itoa(k)] = tc.imageRecall[j]
				want["text_retrieval_recall@"+strconv.Itoa(k)] = tc.textRecall[j]
			}
			if len(m) != len(want) {
				t.Errorf("Metrics() = %v, want %v", m, want)
			}
			for name, w := range want {
				if math.Abs(m[name]-w) > 1e-15 {
					t.Errorf("%s = %v, want %v", name, m[name], w)
				}
			}
		})
	}
}

// TestRetrievalRanksMatchSort checks the one-pass rank counting against a plain stable sort
// of every query's scores, on coarse embeddings that produce many exact ties.
func TestRetrievalRanksMatchSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const ni, dim = 30, 3
	images := make([]float32, ni*dim)
	for i := range images {
		images[i] = float32(r.IntN(3) - 1)
	}
	var texts []float32
	var textImage []int
	for i := 0; i < ni-2; i++ { // the last two images have no caption
		for range 1 + r.IntN(3) {
			for d := 0; d < dim; d++ {
				texts = append(texts, float32(r.IntN(3)-1))
			}
			textImage = append(textImage, i)
		}
	}
	r.Shuffle(len(textImage), func(a, b int) {
		textImage[a], textImage[b] = textImage[b], textImage[a]
		for d := 0; d < dim; d++ {
			texts[a*dim+d], texts[b*dim+d] = texts[b*dim+d], texts[a*dim+d]
		}
	})
	nt := len(textImage)
	got, err := RetrievalMetrics(images, texts, dim, textImage, []int{1, 5, ni})
	if err != nil {
		t.Fatal(err)
	}
	img, txt := make([]float32, len(images)), make([]float32, len(texts))
	for i := 0; i < ni; i++ {
		normalizeInto(img[i*dim:(i+1)*dim], images[i*dim:(i+1)*dim])
	}
	for j := 0; j < nt; j++ {
		normalizeInto(txt[j*dim:(j+1)*dim], texts[j*dim:(j+1)*dim])
	}
	score := func(t, i int) float32 { return dot(txt[t*dim:(t+1)*dim], img[i*dim:(i+1)*dim]) }
	order := func(n int, s func(int) float32) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch sa, sb := s(a), s(b); {
			case sa > sb:
				return -1
			case sa < sb:
				return 1
			}
			return 0
		})
		return idx
	}
	for tx := 0; tx < nt; tx++ {
		o := order(ni, func(i int) float32 { return score(tx, i) })
		if want := slices.Index(o, textImage[tx]) + 1; got.ImageRanks[tx] != want {
			t.Errorf("text %d: image rank %d, sorted %d", tx, got.ImageRanks[tx], want)
		}
	}
	for i := 0; i < ni; i++ {
		o := order(nt, func(tx int) float32 { return score(tx, i) })
		want := 0
		for p, tx := range o {
			if textImage[tx] == i {
				want = p + 1
				break
			}
		}
		if got.TextRanks[i] != want {
			t.Errorf("image %d: text rank %d, sorted %d", i, got.TextRanks[i], want)
		}
	}
}

func TestErrors(t *testing.T) {
	eye := []float32{1, 0, 0, 1}
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"classifier no classes", func() error { _, _, err := ZeroShotClassifier(nil); return err }, "no classes"},
		{"classifier no templates", func() error { _, _, err := ZeroShotClassifier([][][]float32{{{1}}, {}}); return err }, "class 1 has no template"},
		{"classifier ragged", func() error { _, _, err := ZeroShotClassifier([][][]float32{{{1, 0}}, {{1, 0}, {1}}}); return err }, "class 1 template 1: dimension 1, want 2"},
		{"classifier empty dim", func() error { _, _, err := ZeroShotClassifier([][][]float32{{{}}}); return err }, "empty embedding"},
		{"classifier NaN", func() error { _, _, err := ZeroShotClassifier([][][]float32{{{1, float32(math.NaN())}}}); return err }, "non-finite"},
		{"classifier zero mean", func() error { _, _, err := ZeroShotClassifier([][][]float32{{{1, 0}, {-1, 0}}}); return err }, "class 0: the mean"},
		{"logits size", func() error { _, err := ZeroShotLogits(eye, 3, 2, eye, 2); return err }, "4 image values, want 3 images"},
		{"logits weights", func() error { _, err := ZeroShotLogits(eye, 2, 2, eye[:3], 2); return err }, "3 classifier weights"},
		{"logits no images", func() error { _, err := ZeroShotLogits(nil, 0, 2, eye, 2); return err }, "0 images"},
		{"logits Inf", func() error {
			_, err := ZeroShotLogits([]float32{1, float32(math.Inf(1))}, 1, 2, eye, 2)
			return err
		}, "row 0 column 1: non-finite"},
		{"classify no labels", func() error { _, err := Classify(nil, nil, 2); return err }, "no labelled"},
		{"classify label range", func() error { _, err := Classify(eye, []int{0, 2}, 2); return err }, "image 1: label 2 outside [0,2)"},
		{"classify negative label", func() error { _, err := Classify(eye, []int{-1, 0}, 2); return err }, "label -1"},
		{"classify logits size", func() error { _, err := Classify(eye, []int{0}, 2); return err }, "4 logits, want 1 images"},
		{"classify zero classes", func() error { _, err := Classify(nil, []int{0}, 0); return err }, "0 classes"},
		{"classify NaN", func() error { _, err := Classify([]float32{float32(math.NaN()), 0}, []int{0}, 2); return err }, "non-finite"},
		{"retrieval dim", func() error { _, err := RetrievalMetrics(eye, eye, 0, []int{0, 1}, nil); return err }, "dimension 0"},
		{"retrieval ragged", func() error { _, err := RetrievalMetrics(eye, eye[:3], 2, []int{0, 1}, nil); return err }, "texts: 3 values"},
		{"retrieval no images", func() error { _, err := RetrievalMetrics(nil, eye, 2, []int{0, 1}, nil); return err }, "no images"},
		{"retrieval no texts", func() error { _, err := RetrievalMetrics(eye, nil, 2, nil, nil); return err }, "no texts"},
		{"retrieval index count", func() error { _, err := RetrievalMetrics(eye, eye, 2, []int{0}, nil); return err }, "1 text→image indices for 2 texts"},
		{"retrieval index range", func() error { _, err := RetrievalMetrics(eye, eye, 2, []int{0, 2}, nil); return err }, "text 1: image index 2"},
		{"retrieval k zero", func() error { _, err := RetrievalMetrics(eye, eye, 2, []int{0, 1}, []int{0}); return err }, "recall@0"},
		{"retrieval k > images", func() error { _, err := RetrievalMetrics(eye, eye, 2, []int{0, 1}, []int{3}); return err }, "exceeds the 2 images"},
		{"retrieval k > texts", func() error { _, err := RetrievalMetrics(eye, eye[:2], 2, []int{0}, []int{2}); return err }, "exceeds the 1 texts"},
		{"retrieval NaN", func() error {
			_, err := RetrievalMetrics([]float32{0, float32(math.NaN())}, eye, 2, []int{0, 0}, nil)
			return err
		}, "images: row 0 column 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
