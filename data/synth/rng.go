package synth

// rng is a splitmix64 generator: tiny, fast, and fully specified here, so a scene depends only
// on (seed, stream, index) and never on the Go release or on other scenes.
type rng struct{ state uint64 }

// Streams keep training and zero-shot scenes of the same seed independent.
const (
	streamTrain    = 1
	streamZeroShot = 2
)

// newRNG returns the generator of scene index in stream of seed.
func newRNG(seed int64, stream, index int) *rng {
	r := &rng{state: uint64(seed)}
	r.state = r.next() ^ uint64(stream)<<56
	r.state = r.next() + uint64(index)*0xd1342543de82ef95 // odd: distinct indices, distinct states
	r.next()
	return r
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a uniform value in [0, n) for n > 0 (the modulo bias is below 2⁻⁵⁰ for the small
// n used here).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }
