package dist

import (
	"errors"
	"sync"
)

// solo is the world of one process: every collective is the identity.
type solo struct{}

func (solo) barrier() error                          { return nil }
func (solo) bcastF32([]float32, int) error           { return nil }
func (solo) bcastI64([]int64, int) error             { return nil }
func (solo) allreduceF32([]float32) error            { return nil }
func (solo) allgatherF32(send, recv []float32) error { copy(recv, send); return nil }
func (solo) allgatherI64(send, recv []int64) error   { copy(recv, send); return nil }
func (solo) abort(int)                               {}
func (solo) finalize() error                         { return nil }

// Single returns a world of one process, whatever the build.
func Single() *Comm { return &Comm{rank: 0, size: 1, b: solo{}} }

// NewLocalGroup returns n Comms joined in memory, one per goroutine that plays a rank: the
// data-parallel code runs unchanged, in one process, without MPI. Sums are taken in rank order,
// so every rank receives bit-identical results. Abort makes every later collective of the
// group fail instead of waiting for a rank that has gone.
func NewLocalGroup(n int) []*Comm {
	g := &group{n: n, slots: make([]any, n)}
	g.cond = sync.NewCond(&g.mu)
	cs := make([]*Comm, n)
	for r := range cs {
		cs[r] = &Comm{rank: r, size: n, b: &member{g: g, rank: r}}
	}
	return cs
}

// errAborted is what a local group's collectives return once a member aborted.
var errAborted = errors.New("the group was aborted")

// group is the shared state of a local group: each collective is two barrier phases, one after
// every member has posted its buffer, one after every member has read the others'.
type group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
	phase   uint64
	aborted bool
	slots   []any // each member's posted buffer
}

// wait blocks until all n members have called it (a cyclic barrier).
func (g *group) wait() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.aborted {
		return errAborted
	}
	phase := g.phase
	g.arrived++
	if g.arrived == g.n {
		g.arrived = 0
		g.phase++
		g.cond.Broadcast()
		return nil
	}
	for phase == g.phase && !g.aborted {
		g.cond.Wait()
	}
	if g.aborted {
		return errAborted
	}
	return nil
}

// exchange posts v, waits for every member's, runs read over all of them (in rank order), and
// waits again so that no buffer changes while another member reads it.
func (g *group) exchange(rank int, v any, read func(slots []any)) error {
	g.mu.Lock()
	g.slots[rank] = v
	g.mu.Unlock()
	if err := g.wait(); err != nil {
		return err
	}
	read(g.slots)
	return g.wait()
}

// member is one rank of a local group.
type member struct {
	g    *group
	rank int
}

func (m *member) barrier() error { return m.g.wait() }

func bcast[T any](m *member, buf []T, root int) error {
	tmp := make([]T, len(buf))
	if err := m.g.exchange(m.rank, buf, func(s []any) { copy(tmp, s[root].([]T)) }); err != nil {
		return err
	}
	copy(buf, tmp)
	return nil
}

func (m *member) bcastF32(buf []float32, root int) error { return bcast(m, buf, root) }
func (m *member) bcastI64(buf []int64, root int) error   { return bcast(m, buf, root) }

func (m *member) allreduceF32(buf []float32) error {
	sum := make([]float32, len(buf))
	if err := m.g.exchange(m.rank, buf, func(s []any) {
		for _, v := range s {
			for i, x := range v.([]float32) {
				sum[i] += x
			}
		}
	}); err != nil {
		return err
	}
	copy(buf, sum)
	return nil
}

func allgather[T any](m *member, send, recv []T) error {
	return m.g.exchange(m.rank, send, func(s []any) {
		for r, v := range s {
			copy(recv[r*len(send):], v.([]T))
		}
	})
}

func (m *member) allgatherF32(send, recv []float32) error { return allgather(m, send, recv) }
func (m *member) allgatherI64(send, recv []int64) error   { return allgather(m, send, recv) }

func (m *member) abort(int) {
	m.g.mu.Lock()
	m.g.aborted = true
	m.g.cond.Broadcast()
	m.g.mu.Unlock()
}

func (m *member) finalize() error { return nil }
