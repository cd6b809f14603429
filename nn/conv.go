package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds 2-D convolution over feature maps kept channels-last as matrices: a batch of
// maps [B, C, H, W] is the matrix [B·H·W, C] whose rows are the pixels (b, y, x) in row-major
// order and whose columns are the channels. A 1×1 convolution is then a product with the
// weight, and a k×k one an im2col gather followed by a product, so that convolutions run
// through the same BLAS path as every other layer.

// Spatial is the layout of the rows of a channels-last feature map matrix: Batch maps of H×W
// pixels. Ops over feature maps take it because a matrix alone does not say where one image
// row ends.
type Spatial struct{ Batch, H, W int }

// Rows returns B·H·W, the rows of the matrix that holds the maps.
func (s Spatial) Rows() int { return s.Batch * s.H * s.W }

// Conv returns the layout after a k×k window with the given stride and zero padding, as
// torch.nn.Conv2d computes it: ⌊(H + 2·pad − k) / stride⌋ + 1 per side.
func (s Spatial) Conv(k, stride, pad int) Spatial {
	return Spatial{s.Batch, (s.H+2*pad-k)/stride + 1, (s.W+2*pad-k)/stride + 1}
}

// Pool returns the layout after non-overlapping k×k pooling (torch.nn.AvgPool2d(k), floor
// mode): ⌊H / k⌋ × ⌊W / k⌋.
func (s Spatial) Pool(k int) Spatial { return Spatial{s.Batch, s.H / k, s.W / k} }

// String writes the layout as B×H×W, for error messages.
func (s Spatial) String() string { return fmt.Sprintf("%d×%d×%d", s.Batch, s.H, s.W) }

// spatialRows checks that x [N, C] holds the maps s and returns C.
func spatialRows(name string, x *G.Node, s Spatial) (int, error) {
	n, c, err := Matrix(name, x)
	if err != nil {
		return 0, err
	}
	if s.Batch <= 0 || s.H <= 0 || s.W <= 0 || n != s.Rows() {
		return 0, fmt.Errorf("%s: %s %v does not hold %v feature maps", name, x.Name(), x.Shape(), s)
	}
	return c, nil
}

// Im2Col gathers the k×k windows of the channels-last maps x [B·H·W, C] of layout s, at the
// given stride and zero padding, into one row per output pixel: [B·Ho·Wo, C·k·k], columns in
// (channel, ky, kx) order, the order of a flattened PyTorch conv weight [Cout, C, k, k]; so
// im2col(x)·Wᵀ is torch's conv2d. The gradient adds every window's values back to the pixels
// they came from.
func Im2Col(x *G.Node, s Spatial, k, stride, pad int) (*G.Node, error) {
	if IsFloat64(x) {
		return im2col[float64](x, s, k, stride, pad)
	}
	return im2col[float32](x, s, k, stride, pad)
}

func im2col[T Float](x *G.Node, s Spatial, k, stride, pad int) (*G.Node, error) {
	c, err := spatialRows("im2col", x, s)
	if err != nil {
		return nil, err
	}
	o := s.Conv(k, stride, pad)
	if k <= 0 || stride <= 0 || pad < 0 || o.H <= 0 || o.W <= 0 {
		return nil, fmt.Errorf("im2col: window %d, stride %d, padding %d do not fit %v maps", k, stride, pad, s)
	}
	g := convGeom{in: s, out: o, c: c, k: k, stride: stride, pad: pad}
	return Apply("im2col", tensor.Shape{o.Rows(), c * k * k}, G.Nodes{x}, func(y []T, in [][]T) {
		splitWork(o.Rows(), len(y), func(lo, hi int) { gatherWindows(&g, y, in[0], lo, hi) })
	}, func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
		dx, err := Apply("im2col_grad", tensor.Shape{s.Rows(), c}, G.Nodes{dy}, func(d []T, in [][]T) {
			// Images are independent: each goroutine takes whole images.
			splitWork(s.Batch, len(in[0]), func(lo, hi int) { scatterWindows(&g, d, in[0], lo, hi) })
		}, nil)
		return G.Nodes{dx}, err
	})
}

// convGeom is one im2col's sizes.
type convGeom struct {
	in, out           Spatial
	c, k, stride, pad int
}

// source returns the input row read by window offset (ky, kx) of output pixel (b, oy, ox), or
// -1 where that falls in the padding.
func (g *convGeom) source(b, oy, ox, ky, kx int) int {
	iy, ix := oy*g.stride-g.pad+ky, ox*g.stride-g.pad+kx
	if iy < 0 || iy >= g.in.H || ix < 0 || ix >= g.in.W {
		return -1
	}
	return (b*g.in.H+iy)*g.in.W + ix
}

// gatherWindows writes the window rows [lo, hi) of x into y.
func gatherWindows[T Float](g *convGeom, y, x []T, lo, hi int) {
	c, kk := g.c, g.k*g.k
	for r := lo; r < hi; r++ {
		b, oy, ox := r/(g.out.H*g.out.W), r/g.out.W%g.out.H, r%g.out.W
		yr := y[r*c*kk : (r+1)*c*kk]
		for ky := range g.k {
			for kx := range g.k {
				col := ky*g.k + kx
				src := g.source(b, oy, ox, ky, kx)
				if src < 0 {
					for ch := range c {
						yr[ch*kk+col] = 0
					}
					continue
				}
				for ch, v := range x[src*c : (src+1)*c] {
					yr[ch*kk+col] = v
				}
			}
		}
	}
}

// splitWork runs f over [0, n) in chunks on several goroutines when work (values touched) is
// large enough to repay starting them, else in one call.
func splitWork(n, work int, f func(lo, hi int)) {
	if n <= 1 || work < 1<<15 {
		f(0, n)
		return
	}
	parallelRows(n, f)
}

// scatterWindows adds the window rows of images [lo, hi) of dy back into those images' pixels
// of dx, clearing them first.
func scatterWindows[T Float](g *convGeom, dx, dy []T, lo, hi int) {
	c, kk := g.c, g.k*g.k
	per := g.in.H * g.in.W * c
	clear(dx[lo*per : hi*per])
	perOut := g.out.H * g.out.W
	for r := lo * perOut; r < hi*perOut; r++ {
		b, oy, ox := r/perOut, r/g.out.W%g.out.H, r%g.out.W
		dr := dy[r*c*kk : (r+1)*c*kk]
		for ky := range g.k {
			for kx := range g.k {
				src := g.source(b, oy, ox, ky, kx)
				if src < 0 {
					continue
				}
				col := ky*g.k + kx
				d := dx[src*c : (src+1)*c]
				for ch := range d {
					d[ch] += dr[ch*kk+col]
				}
			}
		}
	}
}

// Conv2D is torch.nn.Conv2d without bias (as every convolution of a ResNet, followed by batch
// norm) over channels-last maps: a square k×k kernel, a stride and zero padding. Its weight
// keeps PyTorch's [out, in, k, k] shape as a parameter and is the matrix [out, in·k·k] in the
// graph.
type Conv2D struct {
	W              *G.Node
	In, Out        int // channels
	K, Stride, Pad int
}

// ConvInit is torch's default Conv2d weight init, kaiming_uniform_(a=√5): U(±1/√fanIn),
// fanIn = in·k·k.
func ConvInit(in, k int) Init { return Uniform(1 / math.Sqrt(float64(in*k*k))) }

// NewConv2D creates prefix.weight [out, in, k, k], initialised by init (ConvInit when nil).
func (b *Builder) NewConv2D(prefix string, in, out, k, stride, pad int, init Init) (*Conv2D, error) {
	if in <= 0 || out <= 0 || k <= 0 || stride <= 0 || pad < 0 {
		return nil, fmt.Errorf("nn: conv %s: bad sizes in %d, out %d, kernel %d, stride %d, padding %d", prefix, in, out, k, stride, pad)
	}
	if init == nil {
		init = ConvInit(in, k)
	}
	w, err := b.Param(prefix+".weight", []int{out, in, k, k}, init, out, in*k*k)
	if err != nil {
		return nil, err
	}
	return &Conv2D{W: w, In: in, Out: out, K: k, Stride: stride, Pad: pad}, nil
}

// Forward convolves the maps x [B·H·W, In] of layout s and returns [B·Ho·Wo, Out] with its
// layout. A 1×1 convolution at stride 1 is the product alone.
func (c *Conv2D) Forward(x *G.Node, s Spatial) (*G.Node, Spatial, error) {
	if ch, err := spatialRows("conv", x, s); err != nil {
		return nil, s, err
	} else if ch != c.In {
		return nil, s, fmt.Errorf("conv %s: input %s has %d channels, want %d", c.W.Name(), x.Name(), ch, c.In)
	}
	o := s.Conv(c.K, c.Stride, c.Pad)
	cols := x
	if c.K != 1 || c.Stride != 1 || c.Pad != 0 {
		var err error
		if cols, err = Im2Col(x, s, c.K, c.Stride, c.Pad); err != nil {
			return nil, s, err
		}
	}
	y, err := MatMul(cols, c.W, false, true)
	return y, o, err
}
