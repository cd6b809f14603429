// Package dist is the communication between the processes (ranks) of a data-parallel training
// job: rank and world size, barrier, broadcast, sum all-reduce and all-gather over float32 and
// int64 buffers.
//
// Built with the tag `mpi` (and CC=mpicc), Init joins the MPI job the process was started in
// (mpirun, srun --mpi=pmix, mpiexec); without the tag it returns a world of one process, so a
// plain build needs no MPI. NewLocalGroup connects goroutines of one process instead, for
// tests of data-parallel code without a launcher.
//
// Every rank must make the same collective calls in the same order with buffers of the same
// lengths; a Comm is used by one goroutine at a time.
package dist

import (
	"fmt"
	"os"
	"strconv"
)

// backend is one implementation of the collectives. Buffers have been checked by Comm.
type backend interface {
	barrier() error
	bcastF32(buf []float32, root int) error
	bcastI64(buf []int64, root int) error
	allreduceF32(buf []float32) error // sum, in place
	allgatherF32(send, recv []float32) error
	allgatherI64(send, recv []int64) error
	abort(code int)
	finalize() error
}

// Comm is this process's place in a job: its rank among Size processes and the collectives
// that join them.
type Comm struct {
	rank, size int
	b          backend
	closed     bool
}

// Rank is this process's index in [0, Size).
func (c *Comm) Rank() int { return c.rank }

// Size is the number of processes in the job.
func (c *Comm) Size() int { return c.size }

// Barrier returns once every rank has called it.
func (c *Comm) Barrier() error { return c.wrap("barrier", c.b.barrier()) }

// Broadcast copies root's buf into every other rank's buf.
func (c *Comm) Broadcast(buf []float32, root int) error {
	if err := c.checkRoot(root); err != nil {
		return err
	}
	return c.wrap("broadcast", c.b.bcastF32(buf, root))
}

// BroadcastInt64 copies root's buf into every other rank's buf.
func (c *Comm) BroadcastInt64(buf []int64, root int) error {
	if err := c.checkRoot(root); err != nil {
		return err
	}
	return c.wrap("broadcast", c.b.bcastI64(buf, root))
}

// AllReduceSum replaces buf, on every rank, by the element-wise sum of all ranks' bufs. Every
// rank receives the same values.
func (c *Comm) AllReduceSum(buf []float32) error { return c.wrap("allreduce", c.b.allreduceF32(buf)) }

// AllGather concatenates every rank's send, in rank order, into recv on every rank:
// len(recv) must be Size·len(send).
func (c *Comm) AllGather(send, recv []float32) error {
	if len(recv) != c.size*len(send) {
		return fmt.Errorf("dist: allgather of %d values into %d, want %d", len(send), len(recv), c.size*len(send))
	}
	return c.wrap("allgather", c.b.allgatherF32(send, recv))
}

// AllGatherInt64 is AllGather for int64 values.
func (c *Comm) AllGatherInt64(send, recv []int64) error {
	if len(recv) != c.size*len(send) {
		return fmt.Errorf("dist: allgather of %d values into %d, want %d", len(send), len(recv), c.size*len(send))
	}
	return c.wrap("allgather", c.b.allgatherI64(send, recv))
}

// Abort ends every process of the job with code, as MPI_Abort does: the way out when one rank
// fails and the others would wait for it forever. It returns only in a world of one process
// or a local group, which it leaves to the caller.
func (c *Comm) Abort(code int) { c.b.abort(code) }

// Close leaves the job (MPI_Finalize). Later calls do nothing.
func (c *Comm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.wrap("finalize", c.b.finalize())
}

func (c *Comm) checkRoot(root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("dist: broadcast root %d outside the world of %d", root, c.size)
	}
	return nil
}

func (c *Comm) wrap(op string, err error) error {
	if err != nil {
		return fmt.Errorf("dist: rank %d of %d: %s: %w", c.rank, c.size, op, err)
	}
	return nil
}

// launcherSize returns the number of processes an MPI launcher says it started, from the
// variables Open MPI (OMPI_COMM_WORLD_SIZE) and PMI launchers (PMI_SIZE: MPICH's hydra, Slurm)
// set, and which variable said so; 0 when none is set.
func launcherSize() (int, string, error) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"} {
		s := os.Getenv(v)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, v, fmt.Errorf("dist: %s=%q is not a world size", v, s)
		}
		return n, v, nil
	}
	return 0, "", nil
}

// launcherVars are set by MPI launchers in the processes they start: Open MPI's mpirun,
// MPICH's and Intel MPI's hydra, Slurm's srun (PMI-2 or PMIx), MVAPICH.
var launcherVars = []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"}

// underLauncher reports whether an MPI launcher started this process.
func underLauncher() bool {
	for _, v := range launcherVars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// checkWorld refuses a world whose size disagrees with the launcher's: a binary started by
// another MPI's launcher (or built without MPI) would otherwise run as N separate one-rank
// jobs, each training alone on all the data.
func checkWorld(size int, hint string) error {
	n, v, err := launcherSize()
	if err != nil {
		return err
	}
	if n != 0 && n != size {
		return fmt.Errorf("dist: the launcher started %d processes (%s) but this one sees a world of %d: %s", n, v, size, hint)
	}
	return nil
}
