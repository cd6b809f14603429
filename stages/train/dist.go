package train

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/clipgo/clipgo/nn/checkpoint"
)

// broadcastStart makes every rank start from rank 0's state: its parameters (initialised, or
// read from the checkpoint it resumes), optimiser moments, step and the checkpoint's data
// stream positions, which it returns, and whether the checkpoint's validation is to be redone. Only rank 0 needs to see the run directory.
func (t *trainer) broadcastStart(saved []checkpoint.StreamPos) ([]checkpoint.StreamPos, error) {
	head := []int64{t.step, int64(len(saved)), 0}
	if t.redoVal {
		head[2] = 1
	}
	if err := t.comm.BroadcastInt64(head, 0); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	if head[1] < 0 || head[1] > checkpoint.MaxStreams {
		return nil, fmt.Errorf("start: rank 0 sent %d stream positions", head[1])
	}
	t.step, t.redoVal = head[0], head[2] != 0
	pos := make([]int64, 2*head[1])
	for i, p := range saved {
		pos[2*i], pos[2*i+1] = p.Epoch, p.Sample
	}
	if err := t.comm.BroadcastInt64(pos, 0); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	saved = make([]checkpoint.StreamPos, head[1])
	for i := range saved {
		saved[i] = checkpoint.StreamPos{Epoch: pos[2*i], Sample: pos[2*i+1]}
	}
	for _, p := range t.params {
		if err := t.comm.Broadcast(p.Value, 0); err != nil {
			return nil, fmt.Errorf("start: parameter %s: %w", p.Name, err)
		}
	}
	state := t.opt.State()
	for _, k := range slices.Sorted(maps.Keys(state)) {
		if err := t.comm.Broadcast(state[k], 0); err != nil {
			return nil, fmt.Errorf("start: optimiser %s: %w", k, err)
		}
	}
	if err := t.opt.LoadState(state); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return saved, nil
}

// allReduce averages the gradients and the loss over the ranks in one flat all-reduce, with
// each rank's stop request riding along: every rank then takes the same step, and stops after
// the same one.
func (t *trainer) allReduce(loss float32, stop bool) (float32, bool, error) {
	flat, at := t.flat, 0
	for _, p := range t.params {
		at += copy(flat[at:], p.Grad)
	}
	flat[at] = loss
	flat[at+1] = 0
	if stop {
		flat[at+1] = 1
	}
	start := time.Now()
	if err := t.comm.AllReduceSum(flat); err != nil {
		return 0, false, fmt.Errorf("gradient all-reduce: %w", err)
	}
	t.reduceTime += time.Since(start)
	inv := 1 / float32(t.comm.Size())
	at = 0
	for _, p := range t.params {
		for j := range p.Grad {
			p.Grad[j] = flat[at+j] * inv
		}
		at += len(p.Grad)
	}
	return flat[at] * inv, flat[at+1] > 0, nil
}

// commTime is the time this rank has spent in collectives during training steps.
func (t *trainer) commTime() time.Duration { return t.reduceTime + t.model.CollectiveTime() }

// positions returns where every stream of the job stands, in stream order (gathered from all
// ranks).
func (t *trainer) positions() ([]checkpoint.StreamPos, error) {
	send := make([]int64, 0, 2*len(t.streams))
	for _, s := range t.streams {
		send = append(send, int64(s.epoch), s.position)
	}
	recv := make([]int64, t.comm.Size()*len(send))
	if err := t.comm.AllGatherInt64(send, recv); err != nil {
		return nil, err
	}
	pos := make([]checkpoint.StreamPos, len(recv)/2)
	for i := range pos {
		pos[i] = checkpoint.StreamPos{Epoch: recv[2*i], Sample: recv[2*i+1]}
	}
	return pos, nil
}
