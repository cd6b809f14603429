package eval

import (
	"image"
	"slices"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/stages/evalfile"
)

// failureKeeper keeps, per class, the zero-shot evaluation's most confidently misclassified
// images (largest margin of the predicted class's logit over the true class's) with their
// thumbnails: memory grows with classes × evalfile.MaxFailuresPerClass, never with images.
type failureKeeper struct {
	size    int // the model's image side
	byClass map[int][]keptFailure
}

type keptFailure struct {
	margin float32
	f      evalfile.Failure
}

func newFailureKeeper(size int) *failureKeeper {
	return &failureKeeper{size: size, byClass: map[int][]keptFailure{}}
}

// add looks at a scored batch: CLIP-normalised images [n,3,S,S], their keys and labels, and
// the logits [n,C] (100 · cosine similarity) of classes named by names.
func (k *failureKeeper) add(images []float32, keys []string, labels []int, logits []float32, names []string) error {
	C, per := len(names), 3*k.size*k.size
	for i, y := range labels {
		row := logits[i*C : (i+1)*C]
		pred := 0
		for c, v := range row {
			if v > row[pred] {
				pred = c
			}
		}
		if pred == y {
			continue
		}
		margin := row[pred] - row[y]
		kept := k.byClass[y]
		if len(kept) == evalfile.MaxFailuresPerClass && !(margin > kept[len(kept)-1].margin) {
			continue
		}
		uri, err := evalfile.ImageURI(modelView(images[i*per:(i+1)*per], k.size))
		if err != nil {
			return err
		}
		f := evalfile.Failure{Key: keys[i], Class: names[y], Predicted: names[pred],
			Score: float64(row[y]) / 100, PredictedScore: float64(row[pred]) / 100, Image: uri}
		at, _ := slices.BinarySearchFunc(kept, margin, func(e keptFailure, m float32) int {
			if e.margin > m {
				return -1
			}
			return 1
		})
		kept = slices.Insert(kept, at, keptFailure{margin, f})
		k.byClass[y] = kept[:min(len(kept), evalfile.MaxFailuresPerClass)]
	}
	return nil
}

// list returns the kept failures of the evalfile.MaxFailureClasses classes of lowest recall
// in per (ties in class order), worst first within each.
func (k *failureKeeper) list(per []evalfile.ClassScore) []evalfile.Failure {
	var classes []int
	for c := range k.byClass {
		classes = append(classes, c)
	}
	slices.SortFunc(classes, func(a, b int) int {
		if per[a].Recall != per[b].Recall {
			if per[a].Recall < per[b].Recall {
				return -1
			}
			return 1
		}
		return a - b
	})
	var out []evalfile.Failure
	for _, c := range classes[:min(len(classes), evalfile.MaxFailureClasses)] {
		for _, kf := range k.byClass[c] {
			out = append(out, kf.f)
		}
	}
	return out
}

// modelView undoes the CLIP normalisation of an image [3,S,S]: the picture the model saw.
func modelView(x []float32, size int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for c := range 3 {
		m, sd := imageproc.CLIPMean[c], imageproc.CLIPStd[c]
		for p := range size * size {
			v := (x[c*size*size+p]*sd + m) * 255
			img.Pix[4*p+c] = uint8(min(max(v+0.5, 0), 255))
		}
	}
	for p := range size * size {
		img.Pix[4*p+3] = 255
	}
	return img
}
