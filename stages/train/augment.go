package train

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/fusion"
)

// The training augmentation's recipe keys, open_clip's knobs for stronger augmentation:
//
//	data.crop_scale   least area fraction of RandomResizedCrop's crop, scale = (crop_scale, 1)
//	                  (0: open_clip's 0.9; SLIP and FLIP train at 0.5 or lower)
//	data.flip         horizontal flips
//	data.jitter       colour jitter strength b = c = s (brightness, contrast, saturation)
//	data.jitter_prob  the chance the jitter runs (0: 0.8 when jitter or hue is set)
//	data.hue          the jitter's hue shift, in turns, up to 0.5
//	data.gray_prob    RandomGrayscale's probability
//	data.word_dropout each caption word dropped with this probability (one kept)
//	data.captions_per_image  k rows per image in a batch, k of its captions as positives

// augment returns the image augmentation the data keys describe.
func (d DataConfig) augment() imageproc.Augment {
	a := imageproc.Augment{Flip: d.Flip}
	if d.CropScale > 0 {
		a.Scale = [2]float64{d.CropScale, 1}
	}
	j := d.Jitter
	prob := d.JitterProb
	if prob == 0 {
		prob = boolProb(j > 0 || d.Hue > 0)
	}
	a.Jitter = imageproc.Jitter{Prob: prob, Brightness: j, Contrast: j, Saturation: j, Hue: d.Hue, GrayProb: d.GrayProb}
	return a
}

// validateAugment refuses augmentation keys out of range, and several captions per image
// with a loss that does not take them.
func (c Config) validateAugment() error {
	d := c.Data
	in := func(x, lo, hi float64) bool { return x >= lo && x <= hi && !math.IsNaN(x) }
	switch {
	case !in(d.CropScale, 0, 1):
		return fmt.Errorf("data.crop_scale %g must be in (0, 1] (0: open_clip's 0.9)", d.CropScale)
	case !in(d.JitterProb, 0, 1) || !in(d.GrayProb, 0, 1):
		return fmt.Errorf("data.jitter_prob %g and data.gray_prob %g must be in [0, 1]", d.JitterProb, d.GrayProb)
	case !in(d.Hue, 0, 0.5):
		return fmt.Errorf("data.hue %g must be in [0, 0.5] (turns)", d.Hue)
	case !(d.WordDropout >= 0 && d.WordDropout < 1):
		return fmt.Errorf("data.word_dropout %g must be in [0, 1)", d.WordDropout)
	case d.CaptionsPerImage < 0:
		return fmt.Errorf("data.captions_per_image %d must not be negative", d.CaptionsPerImage)
	case d.CaptionsPerImage > 1 && c.Train.BatchSize%d.CaptionsPerImage != 0:
		return fmt.Errorf("data.captions_per_image %d must divide train.batch_size %d (each image's captions fill that many rows)",
			d.CaptionsPerImage, c.Train.BatchSize)
	case d.CaptionsPerImage > 1 && c.Init == "" && !takesPositives(c.Model):
		return fmt.Errorf("data.captions_per_image %d (several captions of an image as positives) needs model.loss clip without model.triplet.weight, not %q",
			d.CaptionsPerImage, c.Model.Loss)
	}
	return nil
}

// takesPositives reports whether the model's loss takes several positives per row.
func takesPositives(m fusion.Config) bool {
	obj, err := m.Objective()
	if err != nil {
		return true // the model's own check names the problem
	}
	_, ok := obj.(fusion.CLIP)
	return ok
}

// imageIDs returns the image identity of each row of a rank's batch from the rows' keys and
// the rows each stream's batch holds: with data.captions_per_image k, each image's k rows are
// consecutive within its stream's batch, so a run of equal keys is one image.
func imageIDs(keys []string, streamRows int) []int32 {
	ids := make([]int32, len(keys))
	id := int32(-1)
	for i, k := range keys {
		if i%streamRows == 0 || k != keys[i-1] {
			id++
		}
		ids[i] = id
	}
	return ids
}
