package loader

// Batch is a group of samples ready for a training or evaluation step. Row i of Images, Keys
// and Labels is one image; Tokens has one row per caption, and TextImage maps each caption
// row to its image row (the identity unless Config.AllCaptions gave several captions per
// image). With Config.CaptionsPerImage k in training, each record gives k consecutive rows
// (k captions of it, each with its own augmented view) under the same key.
type Batch struct {
	Size       int // B: image rows in this batch (BatchSize, or fewer for eval's last batch)
	ImageSize  int // S
	ContextLen int // L

	Images    []float32 // [B,3,S,S], CLIP-normalised
	Tokens    []int32   // [T,L], T = len(TextImage), zero padded
	TextImage []int32   // [T]: image row of each caption row
	Keys      []string  // [B]
	Labels    []int32   // [B] class indices, -1 where a record has none; nil when none has one

	Epoch    int   // the epoch the batch belongs to
	Position int64 // samples of this epoch (on this rank) read up to the batch's end: resume with Epoch(ctx, Epoch, Position)

	pool *pools
}

// Captions returns T, the number of caption rows in Tokens.
func (b *Batch) Captions() int { return len(b.TextImage) }

// Release hands the batch's buffers back for reuse by later batches. The batch must not be
// used afterwards. Calling it is optional (an unreleased batch is garbage collected), but a
// long training run that releases its batches allocates almost nothing per step.
func (b *Batch) Release() {
	if b.pool != nil {
		p := b.pool
		b.pool = nil
		p.putBatch(b)
	}
}

// pools are bounded free lists of the loader's large buffers. Channels rather than sync.Pool,
// so that buffers survive garbage collections in a long run.
type pools struct {
	imageLen int
	images   chan []float32
	tokens   chan []int32
	batches  chan *Batch
}

func newPools(cfg Config) *pools {
	// Samples in flight: up to 2×workers in each ordered map, a batch being gathered, and the
	// channel buffers between stages; batches: prefetch, collate, the consumer's.
	inflight := 2*(cfg.DecodeWorkers+cfg.TokenizeWorkers) + 2*cfg.BatchSize + 8
	return &pools{
		imageLen: 3 * cfg.ImageSize * cfg.ImageSize,
		images:   make(chan []float32, inflight),
		tokens:   make(chan []int32, inflight),
		batches:  make(chan *Batch, cfg.Prefetch+4),
	}
}

func (p *pools) getImage() []float32 {
	select {
	case b := <-p.images:
		return b
	default:
		return make([]float32, p.imageLen)
	}
}

func (p *pools) putImage(b []float32) {
	select {
	case p.images <- b:
	default:
	}
}

// getTokens returns a slice of length n; its contents are stale.
func (p *pools) getTokens(n int) []int32 {
	select {
	case b := <-p.tokens:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]int32, n)
}

func (p *pools) putTokens(b []int32) {
	select {
	case p.tokens <- b:
	default:
	}
}

func (p *pools) getBatch() *Batch {
	select {
	case b := <-p.batches:
		return b
	default:
		return new(Batch)
	}
}

func (p *pools) putBatch(b *Batch) {
	select {
	case p.batches <- b:
	default:
	}
}

// collate copies samples into a pooled batch and returns their buffers to the pools.
func (e *Epoch) collate(ss []*sample) *Batch {
	cfg := &e.l.cfg
	p := e.l.pool
	b := p.getBatch()
	b.pool = p
	rows := 0
	for _, s := range ss {
		rows += len(s.images)
	}
	b.Size, b.ImageSize, b.ContextLen, b.Epoch = rows, cfg.ImageSize, cfg.ContextLen, e.epoch
	b.Images = resize(b.Images, rows*p.imageLen)
	b.Keys = b.Keys[:0]
	b.Tokens = b.Tokens[:0]
	b.TextImage = b.TextImage[:0]
	labelled := false
	for _, s := range ss {
		labelled = labelled || s.hasLabel
	}
	if labelled {
		b.Labels = resize(b.Labels, rows)
	} else {
		b.Labels = nil
	}
	row := 0
	for _, s := range ss {
		first := row
		for _, img := range s.images {
			copy(b.Images[row*p.imageLen:(row+1)*p.imageLen], img)
			b.Keys = append(b.Keys, s.key)
			if labelled {
				b.Labels[row] = -1
				if s.hasLabel {
					b.Labels[row] = s.label
				}
			}
			p.putImage(img)
			row++
		}
		b.Tokens = append(b.Tokens, s.tokens...)
		for c := range len(s.captions) {
			if len(s.images) > 1 { // one caption per view
				b.TextImage = append(b.TextImage, int32(first+c))
			} else {
				b.TextImage = append(b.TextImage, int32(first))
			}
		}
		b.Position = s.pos + 1
		p.putTokens(s.tokens)
		s.images, s.tokens = nil, nil
	}
	return b
}

// resize returns s with length n, reusing its array when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
