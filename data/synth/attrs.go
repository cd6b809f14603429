package synth

import "image/color"

// Shape is the outline of an object.
type Shape uint8

// The shapes, in class order.
const (
	Circle Shape = iota
	Square
	Triangle
	Star
	Diamond
	Cross
	numShapes
)

var shapeNames = [numShapes]string{"circle", "square", "triangle", "star", "diamond", "cross"}

// String returns the word captions use for s.
func (s Shape) String() string {
	if s < numShapes {
		return shapeNames[s]
	}
	return "shape?"
}

// Colour is the fill colour of an object.
type Colour uint8

// The object colours, in class order. None of them is a background colour, so an object
// never disappears into its background.
const (
	Red Colour = iota
	Orange
	Yellow
	Green
	Cyan
	Blue
	Purple
	Pink
	numColours
)

var colourNames = [numColours]string{"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"}

// colourRGB holds each colour's nominal value; scenes jitter it by at most ColourJitter.
var colourRGB = [numColours][3]uint8{
	{215, 35, 35},   // red
	{245, 135, 20},  // orange
	{240, 215, 30},  // yellow
	{40, 165, 60},   // green
	{35, 200, 215},  // cyan
	{35, 75, 215},   // blue
	{135, 55, 190},  // purple
	{245, 130, 195}, // pink
}

// String returns the word captions use for c.
func (c Colour) String() string {
	if c < numColours {
		return colourNames[c]
	}
	return "colour?"
}

// RGB returns the nominal colour of c (before jitter).
func (c Colour) RGB() color.RGBA {
	v := colourRGB[c%numColours]
	return color.RGBA{v[0], v[1], v[2], 255}
}

// Background is the uniform colour behind the objects.
type Background uint8

// The backgrounds.
const (
	Grey Background = iota
	White
	Black
	numBackgrounds
)

var backgroundNames = [numBackgrounds]string{"grey", "white", "black"}
var backgroundRGB = [numBackgrounds][3]uint8{{128, 128, 128}, {245, 245, 245}, {20, 20, 20}}

// String returns the word captions use for b.
func (b Background) String() string {
	if b < numBackgrounds {
		return backgroundNames[b]
	}
	return "background?"
}

// RGB returns the nominal colour of b (before jitter).
func (b Background) RGB() color.RGBA {
	v := backgroundRGB[b%numBackgrounds]
	return color.RGBA{v[0], v[1], v[2], 255}
}

// Size is the coarse size of an object: its circumradius, as a fraction of the image side,
// lies in [SmallMin, SmallMax] or [LargeMin, LargeMax].
type Size uint8

// The sizes.
const (
	Small Size = iota
	Large
	numSizes
)

// The circumradius ranges of the sizes, as fractions of the image side. The gap between them
// keeps "small" and "large" apart at any image size; LargeMax leaves room for two large
// objects stacked with a gap.
const (
	SmallMin, SmallMax = 0.11, 0.14
	LargeMin, LargeMax = 0.18, 0.21
)

// String returns the word captions use for s.
func (s Size) String() string {
	switch s {
	case Small:
		return "small"
	case Large:
		return "large"
	}
	return "size?"
}

// Position is where a lone object sits.
type Position uint8

// The positions of a one-object scene.
const (
	Middle Position = iota
	Left
	Right
	Top
	Bottom
	numPositions
)

var positionPhrases = [numPositions]string{"in the middle", "on the left", "on the right", "at the top", "at the bottom"}

// String returns the phrase captions use for p ("on the left").
func (p Position) String() string {
	if p < numPositions {
		return positionPhrases[p]
	}
	return "position?"
}

// Relation says where the first object of a two-object scene is relative to the second.
type Relation uint8

// The relations. Captions may state the converse ("B below A" for A Above B).
const (
	NoRelation Relation = iota // one-object scene
	Above
	LeftOf
)

// Pair is a colour × shape combination: the class of a one-object scene.
type Pair struct {
	Colour Colour
	Shape  Shape
}

// String returns the prompt-friendly class name, "red triangle".
func (p Pair) String() string { return p.Colour.String() + " " + p.Shape.String() }

// Index returns p's position in Classes().
func (p Pair) Index() int { return int(p.Colour)*int(numShapes) + int(p.Shape) }

// NumClasses is the number of colour × shape pairs, len(Classes()).
const NumClasses = int(numColours) * int(numShapes)

// Classes returns the class names of the zero-shot task, "red circle", "red square", ...: every
// colour × shape pair (not only the held-out ones), colour-major, so that chance accuracy is
// 1/NumClasses and a model must tell held-out pairs from the seen ones.
func Classes() []string {
	names := make([]string, 0, NumClasses)
	for c := Colour(0); c < numColours; c++ {
		for s := Shape(0); s < numShapes; s++ {
			names = append(names, Pair{c, s}.String())
		}
	}
	return names
}

// heldOut lists the pairs that never appear in training scenes. Each colour is held out with
// exactly one shape and each shape with at most two colours, so every colour and every shape
// is still seen in training with other partners: the zero-shot task tests composition.
var heldOut = [...]Pair{
	{Red, Triangle},
	{Orange, Star},
	{Yellow, Circle},
	{Green, Diamond},
	{Cyan, Square},
	{Blue, Cross},
	{Purple, Circle},
	{Pink, Triangle},
}

// HeldOut returns the colour × shape pairs kept out of training scenes, in a fixed order.
func HeldOut() []Pair { return append([]Pair(nil), heldOut[:]...) }

// IsHeldOut reports whether p is one of HeldOut().
func IsHeldOut(p Pair) bool {
	for _, h := range heldOut {
		if h == p {
			return true
		}
	}
	return false
}

// trainPairs lists the pairs training scenes draw from: all pairs but the held-out ones.
var trainPairs = func() []Pair {
	var ps []Pair
	for c := Colour(0); c < numColours; c++ {
		for s := Shape(0); s < numShapes; s++ {
			if p := (Pair{c, s}); !IsHeldOut(p) {
				ps = append(ps, p)
			}
		}
	}
	return ps
}()
