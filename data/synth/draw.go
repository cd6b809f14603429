package synth

import (
	"image"
	"image/color"
	"math"
)

// outlines holds each polygonal shape's vertices in unit coordinates: centred on the origin,
// circumradius at most 1, y pointing down (image convention), listed in order around the
// outline. The proportions give the shapes similar visual weight. Circle has none.
var outlines = func() [numShapes][][2]float64 {
	var o [numShapes][][2]float64
	o[Square] = [][2]float64{{-0.72, -0.72}, {0.72, -0.72}, {0.72, 0.72}, {-0.72, 0.72}}
	o[Diamond] = [][2]float64{{0, -1}, {0.72, 0}, {0, 1}, {-0.72, 0}}
	// Equilateral, pointing up, centroid at the origin.
	o[Triangle] = [][2]float64{{0, -1}, {0.866, 0.5}, {-0.866, 0.5}}
	// Five points, inner radius 0.45 of the outer one, first point up.
	for k := 0; k < 10; k++ {
		rad := 1.0
		if k%2 == 1 {
			rad = 0.45
		}
		a := -math.Pi/2 + float64(k)*math.Pi/5
		o[Star] = append(o[Star], [2]float64{rad * math.Cos(a), rad * math.Sin(a)})
	}
	// A plus sign: arms of half-width w reaching out to e.
	const w, e = 0.34, 0.85
	o[Cross] = [][2]float64{
		{-w, -e}, {w, -e}, {w, -w}, {e, -w}, {e, w}, {w, w},
		{w, e}, {-w, e}, {-w, w}, {-e, w}, {-e, -w}, {-w, -w},
	}
	return o
}()

// circleRadius is a circle's radius relative to the circumradius of the other shapes, so that
// its area is close to theirs.
const circleRadius = 0.82

// fill paints img with c.
func fill(img *image.RGBA, c color.RGBA) {
	px := img.Pix
	for i := 0; i+3 < len(px); i += 4 {
		px[i], px[i+1], px[i+2], px[i+3] = c.R, c.G, c.B, 255
	}
}

// drawObject paints o onto img with anti-aliased edges: each pixel is covered in proportion to
// the signed distance (in pixels) from its centre to the outline, clamped to [0, 1], a cheap
// and accurate box-filter estimate for outlines that are straight at pixel scale.
func drawObject(img *image.RGBA, o Object) {
	var poly [][2]float64
	if o.Shape != Circle {
		sin, cos := math.Sincos(o.Angle)
		poly = make([][2]float64, len(outlines[o.Shape]))
		for i, v := range outlines[o.Shape] {
			poly[i] = [2]float64{o.X + o.R*(cos*v[0]-sin*v[1]), o.Y + o.R*(sin*v[0]+cos*v[1])}
		}
	}
	b := img.Bounds()
	x0, x1 := max(b.Min.X, int(o.X-o.R)-1), min(b.Max.X, int(o.X+o.R)+2)
	y0, y1 := max(b.Min.Y, int(o.Y-o.R)-1), min(b.Max.Y, int(o.Y+o.R)+2)
	c := o.RGB
	for y := y0; y < y1; y++ {
		py := float64(y) + 0.5
		row := img.Pix[(y-b.Min.Y)*img.Stride:]
		for x := x0; x < x1; x++ {
			px := float64(x) + 0.5
			var d float64
			if poly == nil {
				d = math.Hypot(px-o.X, py-o.Y) - circleRadius*o.R
			} else {
				d = polygonDistance(px, py, poly)
			}
			a := 0.5 - d
			if a <= 0 {
				continue
			}
			p := row[(x-b.Min.X)*4 : (x-b.Min.X)*4+3 : (x-b.Min.X)*4+3]
			if a >= 1 {
				p[0], p[1], p[2] = c.R, c.G, c.B
				continue
			}
			p[0] = blend(p[0], c.R, a)
			p[1] = blend(p[1], c.G, a)
			p[2] = blend(p[2], c.B, a)
		}
	}
}

// blend mixes fg over bg with coverage a in (0, 1).
func blend(bg, fg uint8, a float64) uint8 {
	return uint8(float64(bg)*(1-a) + float64(fg)*a + 0.5)
}

// polygonDistance returns the signed distance from (x, y) to the closed polygon v: negative
// inside, positive outside. Distance is to the nearest edge; the sign comes from the even-odd
// crossing rule evaluated in the same pass.
func polygonDistance(x, y float64, v [][2]float64) float64 {
	best := math.Inf(1)
	inside := false
	for i, j := 0, len(v)-1; i < len(v); j, i = i, i+1 {
		ax, ay := v[i][0], v[i][1]
		ex, ey := v[j][0]-ax, v[j][1]-ay
		wx, wy := x-ax, y-ay
		t := (wx*ex + wy*ey) / (ex*ex + ey*ey)
		t = min(max(t, 0), 1)
		dx, dy := wx-ex*t, wy-ey*t
		best = min(best, dx*dx+dy*dy)
		// Edge from v[i] to v[j] crosses the horizontal ray to the right of (x, y)?
		if (ay > y) != (v[j][1] > y) && x < ax+ex*(y-ay)/ey {
			inside = !inside
		}
	}
	d := math.Sqrt(best)
	if inside {
		return -d
	}
	return d
}
