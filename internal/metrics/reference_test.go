package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// reference returns a function running /work/shared/peers/clip_eval_ref.py (CLIP_benchmark's
// metrics line for line, in torch) and parsing its JSON; NaN comes back as a nil pointer.
func reference(t *testing.T) func(args ...string) map[string]*float64 {
	t.Helper()
	script := testenv.SharedFile(t, "peers/clip_eval_ref.py")
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("%s cannot import torch and numpy: %v: %s", python, err, out))
	}
	return func(args ...string) map[string]*float64 {
		t.Helper()
		out, err := exec.Command(python, append([]string{script}, args...)...).Output()
		if err != nil {
			t.Fatalf("reference %v: %v", args, err)
		}
		var m map[string]*float64
		if err := json.Unmarshal([]byte(strings.ReplaceAll(string(out), "NaN", "null")), &m); err != nil {
			t.Fatalf("reference output %q: %v", out, err)
		}
		return m
	}
}

// compare requires got and want to hold the same metric names and values within 1e-12
// (NaN only as an absent key in got and null in want).
func compare(t *testing.T, got map[string]float64, want map[string]*float64) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		switch {
		case w == nil && ok:
			t.Errorf("%s = %v, reference NaN (absent here)", name, g)
		case w == nil:
		case !ok:
			t.Errorf("%s missing, reference %v", name, *w)
		case math.Abs(g-*w) > 1e-12:
			t.Errorf("%s = %.17g, reference %.17g (diff %.3g)", name, g, *w, g-*w)
		default:
			t.Logf("%s = %.17g (reference identical within 1e-12)", name, g)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && !strings.Contains(name, "_rank") {
			t.Errorf("%s = %v not in the reference", name, got[name])
		}
	}
}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestZeroShotMatchesReference(t *testing.T) {
	ref := reference(t)
	cases := []struct {
		name                string
		classes, tmpl, n, d int
		flat                bool // class embeddings as [C,D] instead of [C,T,D]
		absent              int  // labels avoid the last `absent` classes
		signal              float64
	}{
		{"3 classes [C,D]", 3, 1, 120, 8, true, 0, 0.5},
		{"4 classes 3 templates", 4, 3, 150, 12, false, 0, 0.4},
		{"5 classes 2 templates", 5, 2, 100, 16, false, 0, 0.3},
		{"12 classes 4 templates 2 absent", 12, 4, 300, 16, false, 2, 0.5},
		{"50 classes 3 templates", 50, 3, 600, 32, false, 0, 0.6},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(ci)))
			classEmb := make([][][]float32, tc.classes)
			var flatClass []float32
			for c := range classEmb {
				classEmb[c] = make([][]float32, tc.tmpl)
				for k := range classEmb[c] {
					classEmb[c][k] = randn(r, tc.d)
					flatClass = append(flatClass, classEmb[c][k]...)
				}
			}
			w, dim, err := ZeroShotClassifier(classEmb)
			if err != nil {
				t.Fatal(err)
			}
			labels := make([]int, tc.n)
			labels64 := make([]int64, tc.n)
			images := make([]float32, 0, tc.n*tc.d)
			for i := range labels {
				labels[i] = r.IntN(tc.classes - tc.absent)
				labels64[i] = int64(labels[i])
				noise := randn(r, tc.d)
				for d := range noise {
					images = append(images, float32(tc.signal*float64(w[d*tc.classes+labels[i]]))+noise[d]/float32(math.Sqrt(float64(tc.d))))
				}
			}
			dir := t.TempDir()
			shape := []int{tc.classes, tc.tmpl, tc.d}
			if tc.flat {
				shape = []int{tc.classes, tc.d}
			}
			writeNPY(t, filepath.Join(dir, "class.npy"), flatClass, shape...)
			writeNPY(t, filepath.Join(dir, "img.npy"), images, tc.n, tc.d)
			writeNPY(t, filepath.Join(dir, "y.npy"), labels64, tc.n)
			want := ref("zeroshot", "--image-emb", filepath.Join(dir, "img.npy"),
				"--class-emb", filepath.Join(dir, "class.npy"), "--labels", filepath.Join(dir, "y.npy"))

			logits, err := ZeroShotLogits(images, tc.n, dim, w, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Classify(logits, labels, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if got.Acc1 == 0 || got.Acc1 == 1 {
				t.Errorf("acc1 = %v: the case should be neither hopeless nor perfect to test anything", got.Acc1)
			}
			compare(t, got.Metrics(), want)
		})
	}
}

func TestRetrievalMatchesReference(t *testing.T) {
	ref := reference(t)
	cases := []struct {
		name        string
		images, d   int
		maxCaptions int // each image gets 1..maxCaptions captions
		noCaption   int // the first noCaption images get none
		noise       float64
		ks          []int
	}{
		{"40 images 1 caption", 40, 8, 1, 0, 1.0, []int{1, 5, 10}},
		{"100 images 1-5 captions", 100, 16, 5, 0, 1.5, []int{1, 5, 10}},
		{"80 images 1-3 captions 3 uncaptioned", 80, 16, 3, 3, 1.2, []int{1, 2, 5, 10, 40}},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(ci)))
			images := randn(r, tc.images*tc.d)
			var texts []float32
			var textImage []int
			var tix64 []int64
			for i := tc.noCaption; i < tc.images; i++ {
				for range 1 + r.IntN(tc.maxCaptions) {
					noise := randn(r, tc.d)
					for d := range noise {
						texts = append(texts, images[i*tc.d+d]+float32(tc.noise)*noise[d])
					}
					textImage = append(textImage, i)
					tix64 = append(tix64, int64(i))
				}
			}
			// Shuffle the captions so that an image's captions are not adjacent.
			r.Shuffle(len(textImage), func(a, b int) {
				textImage[a], textImage[b] = textImage[b], textImage[a]
				tix64[a], tix64[b] = tix64[b], tix64[a]
				for d := 0; d < tc.d; d++ {
					texts[a*tc.d+d], texts[b*tc.d+d] = texts[b*tc.d+d], texts[a*tc.d+d]
				}
			})
			nt := len(textImage)
			dir := t.TempDir()
			writeNPY(t, filepath.Join(dir, "img.npy"), images, tc.images, tc.d)
			writeNPY(t, filepath.Join(dir, "txt.npy"), texts, nt, tc.d)
			writeNPY(t, filepath.Join(dir, "tix.npy"), tix64, nt)
			args := []string{"retrieval", "--image-emb", filepath.Join(dir, "img.npy"),
				"--text-emb", filepath.Join(dir, "txt.npy"), "--text-image-index", filepath.Join(dir, "tix.npy"),
				"--recall-k"}
			for _, k := range tc.ks {
				args = append(args, fmt.Sprint(k))
			}
			want := ref(args...)

			got, err := RetrievalMetrics(images, texts, tc.d, textImage, tc.ks)
			if err != nil {
				t.Fatal(err)
			}
			if got.ImageRecall[1] == 0 || got.ImageRecall[1] == 1 {
				t.Errorf("image_retrieval_recall@1 = %v: the case should be neither hopeless nor perfect", got.ImageRecall[1])
			}
			compare(t, got.Metrics(), want)
		})
	}
}
