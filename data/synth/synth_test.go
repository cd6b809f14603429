package synth

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
		side int
	}{
		{0, true, DefaultSize}, {MinSize, true, MinSize}, {MaxSize, true, MaxSize}, {32, true, 32},
		{MinSize - 1, false, MinSize}, {MaxSize + 1, false, MaxSize}, {-5, false, MinSize},
	} {
		o := Options{Size: tc.size}
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("Size %d: Validate() = %v, want ok=%v", tc.size, err, tc.ok)
		}
		if got := Scene(o, 0).Image.Bounds().Dx(); got != tc.side {
			t.Errorf("Size %d: image side %d, want %d", tc.size, got, tc.side)
		}
	}
}

func TestClasses(t *testing.T) {
	names := Classes()
	if len(names) != NumClasses || NumClasses != 48 {
		t.Fatalf("%d classes, NumClasses %d", len(names), NumClasses)
	}
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] {
			t.Errorf("class %q repeated", n)
		}
		seen[n] = true
		p := Pair{Colour(i / int(numShapes)), Shape(i % int(numShapes))}
		if p.Index() != i || p.String() != n {
			t.Errorf("class %d = %q, but Pair %v has index %d", i, n, p, p.Index())
		}
	}
	// Every colour and every shape must still be seen in training with some partner.
	colours, shapes := map[Colour]bool{}, map[Shape]bool{}
	for _, p := range trainPairs {
		colours[p.Colour], shapes[p.Shape] = true, true
	}
	if len(colours) != int(numColours) || len(shapes) != int(numShapes) {
		t.Errorf("training pairs cover %d colours and %d shapes", len(colours), len(shapes))
	}
	if len(trainPairs)+len(HeldOut()) != NumClasses {
		t.Errorf("%d training + %d held-out pairs != %d", len(trainPairs), len(HeldOut()), NumClasses)
	}
	for _, h := range HeldOut() {
		if !seen[h.String()] {
			t.Errorf("held-out pair %v is not a class", h)
		}
	}
}

func TestDeterministic(t *testing.T) {
	opts := Options{Seed: 7, Size: 48}
	const n = 64
	want := make([]Sample, n)
	for i := range want {
		want[i] = Scene(opts, i)
	}
	// Generated again, in reverse order and on several goroutines: the same scenes.
	got := make([]Sample, n)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := n - 1 - w; i >= 0; i -= 4 {
				got[i] = Scene(opts, i)
			}
		}()
	}
	wg.Wait()
	for i := range want {
		if !bytes.Equal(got[i].Image.Pix, want[i].Image.Pix) || fmt.Sprint(got[i].Captions) != fmt.Sprint(want[i].Captions) {
			t.Fatalf("scene %d differs between runs", i)
		}
	}
	if a, b := Scene(Options{Seed: 1}, 3), Scene(Options{Seed: 2}, 3); bytes.Equal(a.Image.Pix, b.Image.Pix) {
		t.Error("seeds 1 and 2 give the same scene 3")
	}
	if a, b := Scene(opts, 3), ZeroShot(opts, 3); bytes.Equal(a.Image.Pix, b.Image.Pix) {
		t.Error("training and zero-shot scene 3 are the same")
	}
	distinct := map[string]bool{}
	for _, s := range want {
		distinct[string(s.Image.Pix)] = true
	}
	if len(distinct) != n {
		t.Errorf("%d distinct images among %d scenes", len(distinct), n)
	}
}

func TestHeldOutNeverInTraining(t *testing.T) {
	var phrases []string
	for _, h := range HeldOut() {
		phrases = append(phrases, h.String())
	}
	twos := 0
	for i := 0; i < 3000; i++ {
		s := Scene(Options{Seed: 3, Size: MinSize}, i)
		for _, o := range s.Objects {
			if IsHeldOut(o.Pair) {
				t.Fatalf("training scene %d draws held-out %v", i, o.Pair)
			}
		}
		for _, c := range s.Captions {
			for _, p := range phrases {
				if strings.Contains(c, p) {
					t.Fatalf("training scene %d caption %q names held-out %q", i, c, p)
				}
			}
		}
		if len(s.Objects) == 2 {
			twos++
		}
	}
	if twos < 1300 || twos > 1700 {
		t.Errorf("%d of 3000 scenes have two objects, want about half", twos)
	}
}

func TestZeroShot(t *testing.T) {
	names := Classes()
	count := map[int]int{}
	for i := 0; i < 80; i++ {
		s := ZeroShot(Options{Seed: 5}, i)
		if len(s.Objects) != 1 || s.Relation != NoRelation {
			t.Fatalf("zero-shot scene %d has %d objects", i, len(s.Objects))
		}
		o := s.Objects[0]
		if !IsHeldOut(o.Pair) || s.Label != o.Pair.Index() {
			t.Fatalf("zero-shot scene %d: pair %v, label %d", i, o.Pair, s.Label)
		}
		for _, c := range s.Captions {
			if !strings.Contains(c, names[s.Label]) {
				t.Errorf("zero-shot scene %d caption %q does not name its class %q", i, c, names[s.Label])
			}
		}
		checkScene(t, fmt.Sprintf("zero-shot scene %d", i), s)
		count[s.Label]++
	}
	for _, h := range HeldOut() {
		if count[h.Index()] != 80/len(HeldOut()) {
			t.Errorf("class %v has %d zero-shot scenes, want %d", h, count[h.Index()], 80/len(HeldOut()))
		}
	}
	if s := Scene(Options{Seed: 5}, 0); s.Label != NoLabel {
		t.Errorf("training scene label %d, want NoLabel", s.Label)
	}
}

// TestScenesTrue checks, at the sizes the pipeline uses, that pixels and captions agree
// with the drawn attributes.
func TestScenesTrue(t *testing.T) {
	for _, size := range []int{MinSize, 32, 64, 224} {
		for i := 0; i < 400; i++ {
			checkScene(t, fmt.Sprintf("size %d scene %d", size, i), Scene(Options{Seed: 11, Size: size}, i))
		}
	}
}

var (
	objectRE = regexp.MustCompile(`\ban? (?:(small|large) )?(` + strings.Join(colourNames[:], "|") + `) (` + strings.Join(shapeNames[:], "|") + `)\b`)
	wordRE   = regexp.MustCompile(`[a-z]+`)
)

// checkScene fails t unless s is drawn and described truthfully.
func checkScene(t *testing.T, name string, s Sample) {
	t.Helper()
	side := float64(s.Image.Bounds().Dx())
	bg := s.Background.RGB()
	for _, corner := range []image.Point{{0, 0}, {int(side) - 1, 0}, {0, int(side) - 1}, {int(side) - 1, int(side) - 1}} {
		if c := s.Image.RGBAAt(corner.X, corner.Y); !near(c, bg, ColourJitter) {
			t.Fatalf("%s: corner %v is %v, background %v is %v", name, corner, c, s.Background, bg)
		}
	}
	for k, o := range s.Objects {
		lo, hi := SmallMin, SmallMax
		if o.Size == Large {
			lo, hi = LargeMin, LargeMax
		}
		if o.R < lo*side-1e-9 || o.R > hi*side+1e-9 {
			t.Fatalf("%s: object %d is %v with radius %.2f of side %v", name, k, o.Size, o.R, side)
		}
		if o.X-o.R < margin-1e-9 || o.X+o.R > side-margin+1e-9 || o.Y-o.R < margin-1e-9 || o.Y+o.R > side-margin+1e-9 {
			t.Fatalf("%s: object %d at (%.1f, %.1f) radius %.1f leaves the image", name, k, o.X, o.Y, o.R)
		}
		// The centre pixel is the object's own colour, nearest to its nominal colour of all.
		c := s.Image.RGBAAt(int(o.X), int(o.Y))
		if c != o.RGB || !near(c, o.Colour.RGB(), ColourJitter) {
			t.Fatalf("%s: object %d (%v) centre pixel %v, drawn %v", name, k, o.Pair, c, o.RGB)
		}
		for other := Colour(0); other < numColours; other++ {
			if other != o.Colour && dist(c, other.RGB()) <= dist(c, o.Colour.RGB()) {
				t.Fatalf("%s: object %d pixel %v is as near %v as %v", name, k, c, other, o.Colour)
			}
		}
		third := side / 3
		if pos := o.Position; len(s.Objects) == 1 && !map[Position]bool{
			Left: o.X <= third, Right: o.X >= side-third, Top: o.Y <= third, Bottom: o.Y >= side-third,
			Middle: abs(o.X-side/2) <= side*0.05 && abs(o.Y-side/2) <= side*0.05,
		}[pos] {
			t.Fatalf("%s: object at (%.1f, %.1f) is not %q in a %v image", name, o.X, o.Y, pos, side)
		}
	}
	if len(s.Objects) == 2 {
		a, b := s.Objects[0], s.Objects[1]
		if a.Pair == b.Pair {
			t.Fatalf("%s: both objects are %v", name, a.Pair)
		}
		apart := b.Y-a.Y > a.R+b.R
		if s.Relation == LeftOf {
			apart = b.X-a.X > a.R+b.R
		}
		if !apart {
			t.Fatalf("%s: relation %d does not hold or objects overlap: %+v %+v", name, s.Relation, a, b)
		}
	}
	if len(s.Captions) != CaptionsPerScene {
		t.Fatalf("%s: %d captions", name, len(s.Captions))
	}
	seen := map[string]bool{}
	for _, c := range s.Captions {
		if seen[c] {
			t.Errorf("%s: caption %q repeated", name, c)
		}
		seen[c] = true
		if err := captionTrue(s, c); err != nil {
			t.Fatalf("%s: caption %q: %v", name, c, err)
		}
	}
}

// captionTrue returns an error unless c mentions every object with its true colour and shape
// (and size, if any), the true background and position (if any), the true relation (if any),
// and no other attribute word.
func captionTrue(s Sample, c string) error {
	if !strings.HasSuffix(c, ".") || strings.TrimSpace(c) != c {
		return fmt.Errorf("not a trimmed sentence")
	}
	matches := objectRE.FindAllStringSubmatchIndex(c, -1)
	if len(matches) != len(s.Objects) {
		return fmt.Errorf("names %d objects, scene has %d", len(matches), len(s.Objects))
	}
	var order []int // object index of each mention
	for _, m := range matches {
		size, pair := "", c[m[4]:m[7]]
		if m[2] >= 0 {
			size = c[m[2]:m[3]]
		}
		found := -1
		for k, o := range s.Objects {
			if o.Pair.String() == pair && (size == "" || size == o.Size.String()) {
				found = k
			}
		}
		if found < 0 {
			return fmt.Errorf("mentions %q %q, not in the scene", size, pair)
		}
		order = append(order, found)
	}
	if len(order) == 2 && order[0] == order[1] {
		return fmt.Errorf("mentions one object twice")
	}
	rest := objectRE.ReplaceAllString(c, "OBJ")
	if strings.Contains(rest, "background") {
		want := s.Background.String() + " background"
		if !strings.Contains(rest, want) {
			return fmt.Errorf("background is %v", s.Background)
		}
		rest = strings.Replace(rest, want, "BG", 1)
	}
	if len(s.Objects) == 1 {
		for p := Position(0); p < numPositions; p++ {
			if strings.Contains(rest, p.String()) && p != s.Objects[0].Position {
				return fmt.Errorf("says %q, object is %q", p, s.Objects[0].Position)
			}
		}
		rest = strings.Replace(rest, s.Objects[0].Position.String(), "POS", 1)
	} else {
		rels := map[string][2]int{}
		if s.Relation == Above {
			rels["OBJ above OBJ"], rels["OBJ below OBJ"] = [2]int{0, 1}, [2]int{1, 0}
		} else {
			rels["OBJ to the left of OBJ"], rels["OBJ to the right of OBJ"] = [2]int{0, 1}, [2]int{1, 0}
		}
		for phrase, want := range rels {
			if strings.Contains(rest, phrase) {
				if order[0] != want[0] || order[1] != want[1] {
					return fmt.Errorf("relation %q stated the wrong way round", phrase)
				}
				rest = strings.Replace(rest, phrase, "REL", 1)
			}
		}
	}
	attrs := map[string]bool{"small": true, "large": true, "above": true, "below": true, "left": true,
		"right": true, "top": true, "bottom": true, "middle": true, "background": true}
	for _, w := range append(append(append([]string{}, colourNames[:]...), shapeNames[:]...), backgroundNames[:]...) {
		attrs[w] = true
	}
	for _, w := range wordRE.FindAllString(rest, -1) {
		if attrs[w] {
			return fmt.Errorf("stray attribute word %q in %q", w, rest)
		}
	}
	return nil
}

func near(a, b color.RGBA, tol int) bool {
	return absInt(int(a.R)-int(b.R)) <= tol && absInt(int(a.G)-int(b.G)) <= tol && absInt(int(a.B)-int(b.B)) <= tol
}

func dist(a, b color.RGBA) int {
	dr, dg, db := int(a.R)-int(b.R), int(a.G)-int(b.G), int(a.B)-int(b.B)
	return dr*dr + dg*dg + db*db
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func abs(v float64) float64 { return max(v, -v) }

// TestContactSheet draws a grid of scenes to a PNG for a person to judge that shapes and
// colours are recognisable. It goes to $CLIPGO_SYNTH_PNG_DIR when set, else a temporary
// directory; the test checks the file decodes to the expected size.
func TestContactSheet(t *testing.T) {
	dir := os.Getenv("CLIPGO_SYNTH_PNG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, size := range []int{32, 64} {
		const cols, rows = 8, 4
		sheet := image.NewRGBA(image.Rect(0, 0, cols*(size+2), rows*(size+2)))
		var captions []string
		for i := 0; i < cols*rows; i++ {
			s := Scene(Options{Seed: 1, Size: size}, i)
			if i >= cols*(rows-1) {
				s = ZeroShot(Options{Seed: 1, Size: size}, i)
			}
			at := image.Pt((i%cols)*(size+2)+1, (i/cols)*(size+2)+1)
			draw.Draw(sheet, s.Image.Bounds().Add(at), s.Image, image.Point{}, draw.Src)
			captions = append(captions, fmt.Sprintf("%2d: %s", i, s.Captions[0]))
		}
		path := filepath.Join(dir, fmt.Sprintf("synth-%d.png", size))
		var buf bytes.Buffer
		if err := png.Encode(&buf, sheet); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := png.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil || back.Bounds() != sheet.Bounds() {
			t.Fatalf("contact sheet %s: %v, bounds %v", path, err, back.Bounds())
		}
		t.Logf("wrote %s (last row: zero-shot)\n%s", path, strings.Join(captions, "\n"))
	}
}

func BenchmarkScene(b *testing.B) {
	for _, size := range []int{32, 64, 224} {
		b.Run(fmt.Sprintf("%dpx", size), func(b *testing.B) {
			opts := Options{Seed: 1, Size: size}
			b.SetBytes(int64(size * size * 4))
			for i := 0; b.Loop(); i++ {
				Scene(opts, i)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scenes/s")
		})
	}
}
