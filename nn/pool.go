package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AvgPool2D averages non-overlapping k×k windows of the channels-last maps x [B·H·W, C] of
// layout s, as torch.nn.AvgPool2d(k) (stride k, no padding, floor mode: a last partial row or
// column of windows is dropped): [B·⌊H/k⌋·⌊W/k⌋, C]. The gradient spreads each window's
// gradient over its k² pixels (gorgonia's own pool sends it to the first one only).
func AvgPool2D(x *G.Node, s Spatial, k int) (*G.Node, error) {
	if IsFloat64(x) {
		return avgPool2D[float64](x, s, k)
	}
	return avgPool2D[float32](x, s, k)
}

func avgPool2D[T Float](x *G.Node, s Spatial, k int) (*G.Node, error) {
	c, err := spatialRows("avg_pool", x, s)
	if err != nil {
		return nil, err
	}
	o := s.Pool(k)
	if k <= 0 || o.H <= 0 || o.W <= 0 {
		return nil, fmt.Errorf("avg_pool: window %d does not fit %v maps", k, s)
	}
	inv := 1 / float64(k*k)
	// window calls f(src, dst) for every input pixel row src of output pixel row dst.
	window := func(lo, hi int, f func(src, dst int)) {
		for r := lo; r < hi; r++ {
			b, oy, ox := r/(o.H*o.W), r/o.W%o.H, r%o.W
			for ky := range k {
				for kx := range k {
					f((b*s.H+oy*k+ky)*s.W+ox*k+kx, r)
				}
			}
		}
	}
	return Apply("avg_pool", tensor.Shape{o.Rows(), c}, G.Nodes{x}, func(y []T, in [][]T) {
		splitWork(o.Rows(), len(in[0]), func(lo, hi int) {
			acc := make([]float64, c)
			for r := lo; r < hi; r++ {
				clear(acc)
				window(r, r+1, func(src, _ int) {
					for j, v := range in[0][src*c : (src+1)*c] {
						acc[j] += float64(v)
					}
				})
				for j, v := range acc {
					y[r*c+j] = T(v * inv)
				}
			}
		})
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("avg_pool_grad", tensor.Shape{s.Rows(), c}, G.Nodes{g}, func(d []T, in [][]T) {
			if o.H*k != s.H || o.W*k != s.W {
				clear(d) // the dropped edge gets no gradient
			}
			splitWork(o.Rows(), len(d), func(lo, hi int) {
				window(lo, hi, func(src, dst int) {
					dr, gr := d[src*c:(src+1)*c], in[0][dst*c:(dst+1)*c]
					for j, v := range gr {
						dr[j] = T(float64(v) * inv)
					}
				})
			})
		}, nil)
		return G.Nodes{dx}, err
	})
}

// PrependMean returns, for each of the groups of rows of x [groups·P, C] (the P tokens of one
// sequence), their mean followed by the rows themselves: [groups·(P+1), C]. It is how an
// attention pool adds its query token (open_clip's AttentionPool2d: the mean of the flattened
// feature map, then the map).
func PrependMean(x *G.Node, groups int) (*G.Node, error) {
	if IsFloat64(x) {
		return prependMean[float64](x, groups)
	}
	return prependMean[float32](x, groups)
}

func prependMean[T Float](x *G.Node, groups int) (*G.Node, error) {
	n, c, err := Matrix("prepend_mean", x)
	if err != nil {
		return nil, err
	}
	if groups <= 0 || n%groups != 0 {
		return nil, fmt.Errorf("prepend_mean: %s %v does not split into %d groups of rows", x.Name(), x.Shape(), groups)
	}
	p := n / groups
	return Apply("prepend_mean", tensor.Shape{groups * (p + 1), c}, G.Nodes{x}, func(y []T, in [][]T) {
		acc := make([]float64, c)
		for b := range groups {
			clear(acc)
			rows := in[0][b*p*c : (b+1)*p*c]
			for r := range p {
				for j, v := range rows[r*c : (r+1)*c] {
					acc[j] += float64(v)
				}
			}
			out := y[b*(p+1)*c : (b+1)*(p+1)*c]
			for j, v := range acc {
				out[j] = T(v / float64(p))
			}
			copy(out[c:], rows)
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("prepend_mean_grad", tensor.Shape{n, c}, G.Nodes{g}, func(d []T, in [][]T) {
			for b := range groups {
				gb := in[0][b*(p+1)*c : (b+1)*(p+1)*c]
				for r := range p {
					dr, gr := d[(b*p+r)*c:(b*p+r+1)*c], gb[(r+1)*c:(r+2)*c]
					for j, v := range gr {
						dr[j] = v + T(float64(gb[j])/float64(p))
					}
				}
			}
		}, nil)
		return G.Nodes{dx}, err
	})
}
