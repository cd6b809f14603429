// Package synth generates captioned scenes of one or two coloured shapes on a plain
// background, so that the whole pipeline can be trained and evaluated without any downloaded
// data, and so that zero-shot transfer can be measured on attribute combinations the model
// never saw.
//
// Every scene is a pure function of (seed, index): workers can generate scenes in any order
// and in parallel, and a data set does not depend on how many workers made it. Training
// scenes (Scene) never contain a HeldOut pair; the zero-shot set (ZeroShot) contains only
// one-object scenes of held-out pairs, labelled with their index in Classes().
package synth

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Image sizes, in pixels per side.
const (
	DefaultSize = 64
	MinSize     = 32
	MaxSize     = 1024
)

// ColourJitter is the largest change, per channel, scenes apply to a nominal object or
// background colour, so that colour names stay unambiguous while pixels vary.
const ColourJitter = 10

// NoLabel is Sample.Label for training scenes.
const NoLabel = -1

// Options selects a family of scenes.
type Options struct {
	Seed int64 // scenes of different seeds are independent
	Size int   // image side in pixels; 0 means DefaultSize
}

// Validate reports whether o describes images that can be drawn.
func (o Options) Validate() error {
	if o.Size != 0 && (o.Size < MinSize || o.Size > MaxSize) {
		return fmt.Errorf("synth: image size %d outside [%d, %d]", o.Size, MinSize, MaxSize)
	}
	return nil
}

// side returns the image side Scene draws: Size, defaulted and clamped to [MinSize, MaxSize].
func (o Options) side() int {
	if o.Size == 0 {
		return DefaultSize
	}
	return min(max(o.Size, MinSize), MaxSize)
}

// Object is one drawn shape. X, Y and R are in pixels: the centre and the circumradius.
type Object struct {
	Pair
	Size     Size
	Position Position // one-object scenes only
	X, Y, R  float64
	Angle    float64    // rotation in radians, small enough to keep a square a square
	RGB      color.RGBA // the jittered fill colour actually drawn
}

// Sample is one generated scene.
type Sample struct {
	Image      *image.RGBA // Size × Size, opaque
	Captions   []string    // distinct descriptions, each true of the image
	Objects    []Object    // one or two; with two, Relation relates Objects[0] to Objects[1]
	Relation   Relation
	Background Background
	Label      int // Pair.Index() of the object for zero-shot scenes, NoLabel otherwise
}

// CaptionsPerScene is the number of captions each scene gets.
const CaptionsPerScene = 3

// Scene returns training scene i of the family opts: one or two objects (about half each), no
// held-out pair, CaptionsPerScene captions. Sizes outside [MinSize, MaxSize] are clamped; use
// Options.Validate to refuse them instead.
func Scene(opts Options, i int) Sample {
	r := newRNG(opts.Seed, streamTrain, i)
	s := Sample{Background: Background(r.intn(int(numBackgrounds))), Label: NoLabel}
	side := float64(opts.side())
	if r.float() < 0.5 {
		o := newObject(r, trainPairs[r.intn(len(trainPairs))], side)
		s.Objects = []Object{placeAlone(r, o, Position(r.intn(int(numPositions))), side)}
	} else {
		a := trainPairs[r.intn(len(trainPairs))]
		b := trainPairs[r.intn(len(trainPairs)-1)]
		if b == a { // draw b from the pairs other than a: the last one stands in for a
			b = trainPairs[len(trainPairs)-1]
		}
		s.Relation = Above
		if r.float() < 0.5 {
			s.Relation = LeftOf
		}
		s.Objects = placePair(r, newObject(r, a, side), newObject(r, b, side), s.Relation, side)
	}
	s.Image = render(r, s, opts.side())
	s.Captions = describe(r, s)
	return s
}

// ZeroShot returns zero-shot scene i of the family opts: one object of the held-out pair
// HeldOut()[i mod len(HeldOut())] (so classes are balanced), labelled with its Pair.Index().
// Its other attributes and its captions vary as in Scene.
func ZeroShot(opts Options, i int) Sample {
	r := newRNG(opts.Seed, streamZeroShot, i)
	p := heldOut[i%len(heldOut)]
	s := Sample{Background: Background(r.intn(int(numBackgrounds))), Label: p.Index()}
	side := float64(opts.side())
	s.Objects = []Object{placeAlone(r, newObject(r, p, side), Position(r.intn(int(numPositions))), side)}
	s.Image = render(r, s, opts.side())
	s.Captions = describe(r, s)
	return s
}

// margin is the least distance, in pixels, between an object's circumcircle and the border.
const margin = 1.0

// newObject draws the size, radius, rotation and jittered colour of an object of pair p.
func newObject(r *rng, p Pair, side float64) Object {
	o := Object{Pair: p, Size: Size(r.intn(int(numSizes)))}
	lo, hi := SmallMin, SmallMax
	if o.Size == Large {
		lo, hi = LargeMin, LargeMax
	}
	o.R = side * (lo + (hi-lo)*r.float())
	o.Angle = (r.float()*2 - 1) * 12 * math.Pi / 180
	c := p.Colour.RGB()
	o.RGB = color.RGBA{jitter(r, c.R), jitter(r, c.G), jitter(r, c.B), 255}
	return o
}

// placeAlone puts a lone object at pos. Off-centre objects keep their centre within a third
// of the image side from their edge, and a centred one within 5% of the middle, so that the
// position words stay true.
func placeAlone(r *rng, o Object, pos Position, side float64) Object {
	o.Position = pos
	lo, hi := o.R+margin, side-o.R-margin
	near := func() float64 { return lo + (max(side/3, lo)-lo)*r.float() } // toward the low edge
	across := func() float64 { return clamp(side*(0.5+(r.float()*2-1)*0.08), lo, hi) }
	switch pos {
	case Left:
		o.X, o.Y = near(), across()
	case Right:
		o.X, o.Y = side-near(), across()
	case Top:
		o.X, o.Y = across(), near()
	case Bottom:
		o.X, o.Y = across(), side-near()
	default:
		o.X = side * (0.5 + (r.float()*2-1)*0.05)
		o.Y = side * (0.5 + (r.float()*2-1)*0.05)
	}
	return o
}

// placePair stacks a and b along one axis, a first (above, or to the left), with a gap of 3–6%
// of the side between their circumcircles, so they never overlap; the pair sits anywhere the
// free space allows, and each object wanders a little across the other axis.
func placePair(r *rng, a, b Object, rel Relation, side float64) []Object {
	gap := side * (0.03 + 0.03*r.float())
	free := side - 2*margin - 2*a.R - 2*b.R - gap // ≥ 0 for side ≥ MinSize
	along := margin + max(free, 0)*r.float() + a.R
	alongB := along + a.R + gap + b.R
	across := func(o Object) float64 {
		return clamp(side*(0.5+(r.float()*2-1)*0.15), o.R+margin, side-o.R-margin)
	}
	if rel == Above {
		a.X, a.Y = across(a), along
		b.X, b.Y = across(b), alongB
	} else {
		a.X, a.Y = along, across(a)
		b.X, b.Y = alongB, across(b)
	}
	return []Object{a, b}
}

// render draws s on a side × side image.
func render(r *rng, s Sample, side int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	bg := s.Background.RGB()
	fill(img, color.RGBA{jitter(r, bg.R), jitter(r, bg.G), jitter(r, bg.B), 255})
	for _, o := range s.Objects {
		drawObject(img, o)
	}
	return img
}

// jitter moves v by at most ColourJitter, staying in [0, 255].
func jitter(r *rng, v uint8) uint8 {
	return uint8(clamp(float64(v)+float64(r.intn(2*ColourJitter+1)-ColourJitter), 0, 255))
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
