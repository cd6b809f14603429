package explain

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"path/filepath"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/progress"
)

// sample is one image of a split with what the pictures show of it.
type sample struct {
	key, caption string
	class        string // "" unless the split is labelled
	image        image.Image
}

// split is the images read from a prepared split: their samples and model inputs [N,3,S,S].
type split struct {
	name    string
	samples []sample
	inputs  []float32
}

// defaultSplits are the splits read when none is named, in order of preference: the
// zero-shot split is labelled, so the 2-D map can colour it by class.
var defaultSplits = []string{"zeroshot", "val", "test", "train"}

// errEnough stops a shard read once enough images are in.
var errEnough = errors.New("enough images")

// readSplit reads up to points images (evenly spaced, so that they span a split sorted by
// class) with a caption of a split of the prepared dataset dir, decoded and transformed for a
// model of image side size.
func readSplit(ctx context.Context, dir, name string, points, size int, bar io.Writer, log *slog.Logger) (*split, error) {
	if dir == "" {
		return nil, errors.New("--data is required (a prepared dataset)")
	}
	if err := ingest.CheckPrepared(dir); err != nil {
		return nil, err
	}
	m, err := shard.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if name == "" {
		for _, s := range defaultSplits {
			if m.Splits[s] != nil {
				name = s
				break
			}
		}
		if name == "" {
			return nil, fmt.Errorf("dataset %s has none of the splits %v: name one with --split", dir, defaultSplits)
		}
	}
	files, err := m.Files(dir, name)
	if err != nil {
		return nil, err
	}
	total := m.Splits[name].Images
	set := &split{name: filepath.Base(filepath.Clean(dir)) + ":" + name}
	p := progress.New(bar, log, "explain: read", min(total, int64(points)))
	defer p.Finish()
	row := int64(-1)
	err = shard.Read(ctx, files, shard.ReadOptions{}, func(s shard.Sample) error {
		row++
		if row*int64(points) < int64(len(set.samples))*total { // the next pick is further on
			return nil
		}
		caps := s.AllCaptions()
		if len(caps) == 0 {
			log.Warn("explain: image without a caption skipped", "key", s.Key)
			return nil
		}
		img, _, err := imageproc.Decode(s.JPG, imageproc.DefaultLimits)
		if err != nil {
			log.Warn("explain: image skipped", "key", s.Key, "reason", err)
			return nil
		}
		in := make([]float32, 3*size*size)
		if err := imageproc.EvalTransform(in, img, size); err != nil {
			return fmt.Errorf("image %s: %w", s.Key, err)
		}
		sm := sample{key: s.Key, caption: caps[0], image: img}
		if s.Label != nil && int(*s.Label) >= 0 && int(*s.Label) < len(m.ClassNames) {
			sm.class = m.ClassNames[*s.Label]
		}
		set.samples = append(set.samples, sm)
		set.inputs = append(set.inputs, in...)
		p.Add(1, "")
		if len(set.samples) == points {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("%s: %w", set.name, err)
	}
	if len(set.samples) < 2 {
		return nil, fmt.Errorf("%s: %d images with a caption, need at least 2", set.name, len(set.samples))
	}
	return set, nil
}

// pca2 projects the rows of x [n,dim] onto their first two principal components and returns
// the points [n,2] with the share of the variance each component explains.
func pca2(x []float32, n, dim int) ([]float64, []float64, error) {
	if n < 2 || dim < 2 {
		return nil, nil, fmt.Errorf("PCA of %d points of %d dimensions: need at least 2 of each", n, dim)
	}
	a := mat.NewDense(n, dim, nil)
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			v := float64(x[i*dim+j])
			a.Set(i, j, v)
			mean[j] += v / float64(n)
		}
	}
	var pc stat.PC
	if !pc.PrincipalComponents(a, nil) {
		return nil, nil, errors.New("PCA did not converge")
	}
	var vecs mat.Dense
	pc.VectorsTo(&vecs)
	vars := pc.VarsTo(nil)
	var sum float64
	for _, v := range vars {
		sum += v
	}
	explained := []float64{0, 0}
	if sum > 0 {
		explained = []float64{roundShare(vars[0] / sum), roundShare(vars[1] / sum)}
	}
	xy := make([]float64, 2*n)
	for i := range n {
		for k := range 2 {
			var s float64
			for j := range dim {
				s += (a.At(i, j) - mean[j]) * vecs.At(j, k)
			}
			xy[2*i+k] = s
		}
	}
	return xy, explained, nil
}
