package dist

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// exercise runs every collective on c and checks the results, as each rank of a group of n sees
// them; the MPI test runs it on real ranks.
func exercise(c *Comm) error {
	r, n := c.Rank(), c.Size()
	if err := c.Barrier(); err != nil {
		return err
	}
	b := []float32{float32(r), 0.5}
	if err := c.Broadcast(b, n-1); err != nil {
		return err
	}
	if !slices.Equal(b, []float32{float32(n - 1), 0.5}) {
		return errors.New("broadcast: got " + fmtF(b))
	}
	bi := []int64{int64(r) << 40, 7}
	if err := c.BroadcastInt64(bi, 0); err != nil {
		return err
	}
	if !slices.Equal(bi, []int64{0, 7}) {
		return errors.New("broadcast int64 wrong")
	}
	sum := []float32{1, float32(r), 0.25}
	if err := c.AllReduceSum(sum); err != nil {
		return err
	}
	if want := []float32{float32(n), float32(n * (n - 1) / 2), 0.25 * float32(n)}; !slices.Equal(sum, want) {
		return errors.New("allreduce: got " + fmtF(sum))
	}
	send := []float32{float32(10 * r), float32(10*r + 1)}
	recv := make([]float32, 2*n)
	if err := c.AllGather(send, recv); err != nil {
		return err
	}
	for q := range n {
		if recv[2*q] != float32(10*q) || recv[2*q+1] != float32(10*q+1) {
			return errors.New("allgather: got " + fmtF(recv))
		}
	}
	sendI := []int64{int64(r) << 33}
	recvI := make([]int64, n)
	if err := c.AllGatherInt64(sendI, recvI); err != nil {
		return err
	}
	for q := range n {
		if recvI[q] != int64(q)<<33 {
			return errors.New("allgather int64 wrong")
		}
	}
	if err := c.AllGather(send, make([]float32, 3)); err == nil {
		return errors.New("allgather into a buffer of the wrong size accepted")
	}
	if err := c.Broadcast(b, n); err == nil {
		return errors.New("broadcast from a root outside the world accepted")
	}
	return nil
}

func fmtF(v []float32) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += string(rune('0' + int(x)%10))
	}
	return s + "]"
}

func TestLocalGroup(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		cs := NewLocalGroup(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for r, c := range cs {
			wg.Go(func() {
				for range 3 { // the group's barrier phases must be reusable
					if errs[r] = exercise(c); errs[r] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Errorf("group of %d, rank %d: %v", n, r, err)
			}
		}
	}
}

// TestLocalGroupAbort: a rank that aborts frees the ranks waiting for it, with an error.
func TestLocalGroupAbort(t *testing.T) {
	cs := NewLocalGroup(3)
	done := make(chan error, 2)
	for _, c := range cs[:2] {
		go func() { done <- c.AllReduceSum(make([]float32, 4)) }()
	}
	time.Sleep(20 * time.Millisecond)
	cs[2].Abort(1)
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Error("a collective of an aborted group succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a rank still waits 5 s after another aborted")
		}
	}
}

func TestSingle(t *testing.T) {
	if err := exercise(Single()); err != nil {
		t.Fatal(err)
	}
}
