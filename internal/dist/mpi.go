//go:build mpi

package dist

// The binding is the project's own: the module proxy serves no Go MPI binding, and the few
// calls needed fit here. Only standard MPI-3 functions are used, so Open MPI and MPICH both
// build it; CC=mpicc supplies their include and library flags.

/*
#include <stdint.h>
#include <stdlib.h>
#include <mpi.h>

// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are macros over global structs, which
// cgo cannot name: these wrappers take them on the C side.
static int cg_init(int *provided) { return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided); }
static int cg_errors_return(void) { return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); }
static int cg_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int cg_size(int *n) { return MPI_Comm_size(MPI_COMM_WORLD, n); }
static int cg_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int cg_bcast_f32(float *buf, int n, int root) { return MPI_Bcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD); }
static int cg_bcast_i64(int64_t *buf, int n, int root) { return MPI_Bcast(buf, n, MPI_INT64_T, root, MPI_COMM_WORLD); }
static int cg_allreduce_f32(float *buf, int n) { return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }
static int cg_allgather_f32(float *send, int n, float *recv) { return MPI_Allgather(send, n, MPI_FLOAT, recv, n, MPI_FLOAT, MPI_COMM_WORLD); }
static int cg_allgather_i64(int64_t *send, int n, int64_t *recv) { return MPI_Allgather(send, n, MPI_INT64_T, recv, n, MPI_INT64_T, MPI_COMM_WORLD); }
static int cg_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static int cg_finalize(void) { return MPI_Finalize(); }
static int cg_error_string(int code, char *buf, int *len) { return MPI_Error_string(code, buf, len); }
static int cg_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Enabled reports whether this build can join an MPI job (built with the tag mpi).
const Enabled = true

// maxCount is the largest element count one MPI call takes (its count is a C int); longer
// buffers go in pieces.
const maxCount = math.MaxInt32

var (
	initOnce sync.Once
	world    *mpiWorld
	initErr  error
)

// Init joins the MPI job (MPI_Init_thread) once per process and returns this process's Comm.
// MPI errors are returned, not fatal (MPI_ERRORS_RETURN). It refuses a world whose size
// disagrees with the launcher's (a binary started by another MPI's launcher). Started without
// a launcher, it returns a world of one without initialising MPI: Open MPI's singleton start
// spawns a daemon through ssh, which a container may lack, for nothing.
func Init() (*Comm, error) {
	if !underLauncher() {
		return Single(), nil
	}
	initOnce.Do(func() { world, initErr = startMPI() })
	if initErr != nil {
		return nil, initErr
	}
	if err := checkWorld(world.size, "clipgo was linked against another MPI than the launcher's: start it with the mpirun of the MPI it was built with"); err != nil {
		return nil, err
	}
	return &Comm{rank: world.rank, size: world.size, b: world}, nil
}

// mpiWorld runs every MPI call on one OS thread, the one that initialised MPI, as
// MPI_THREAD_FUNNELED requires: Go moves goroutines between threads, so calls are handed to a
// goroutine locked to its thread.
type mpiWorld struct {
	rank, size int
	calls      chan func()
}

func startMPI() (*mpiWorld, error) {
	w := &mpiWorld{calls: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is MPI's for the process's life
		var provided C.int
		if rc := C.cg_init(&provided); rc != 0 {
			ready <- fmt.Errorf("dist: MPI_Init_thread: %w", mpiError(rc))
			return
		}
		if provided < C.MPI_THREAD_FUNNELED {
			ready <- errors.New("dist: this MPI does not support MPI_THREAD_FUNNELED")
			return
		}
		var r, n C.int
		for _, rc := range []C.int{C.cg_errors_return(), C.cg_rank(&r), C.cg_size(&n)} {
			if rc != 0 {
				ready <- fmt.Errorf("dist: MPI setup: %w", mpiError(rc))
				return
			}
		}
		w.rank, w.size = int(r), int(n)
		ready <- nil
		for f := range w.calls {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return w, nil
}

// do runs f on the MPI thread and returns its error, with MPI's message (read there too).
func (w *mpiWorld) do(f func() C.int) error {
	done := make(chan error)
	w.calls <- func() {
		if rc := f(); rc != 0 {
			done <- mpiError(rc)
			return
		}
		done <- nil
	}
	return <-done
}

// chunks calls f over [0, n) in pieces of at most maxCount elements.
func chunks(n int, f func(lo, hi int) C.int) C.int {
	for lo := 0; lo < n; lo += maxCount {
		if rc := f(lo, min(lo+maxCount, n)); rc != 0 {
			return rc
		}
	}
	return 0
}

func (w *mpiWorld) barrier() error { return w.do(func() C.int { return C.cg_barrier() }) }

func (w *mpiWorld) bcastF32(buf []float32, root int) error {
	return w.do(func() C.int {
		return chunks(len(buf), func(lo, hi int) C.int {
			return C.cg_bcast_f32((*C.float)(unsafe.Pointer(&buf[lo])), C.int(hi-lo), C.int(root))
		})
	})
}

func (w *mpiWorld) bcastI64(buf []int64, root int) error {
	return w.do(func() C.int {
		return chunks(len(buf), func(lo, hi int) C.int {
			return C.cg_bcast_i64((*C.int64_t)(unsafe.Pointer(&buf[lo])), C.int(hi-lo), C.int(root))
		})
	})
}

func (w *mpiWorld) allreduceF32(buf []float32) error {
	return w.do(func() C.int {
		return chunks(len(buf), func(lo, hi int) C.int {
			return C.cg_allreduce_f32((*C.float)(unsafe.Pointer(&buf[lo])), C.int(hi-lo))
		})
	})
}

func (w *mpiWorld) allgatherF32(send, recv []float32) error {
	if len(send) == 0 {
		return nil
	}
	if len(send) > maxCount {
		return fmt.Errorf("allgather of %d values per rank: MPI takes at most %d", len(send), maxCount)
	}
	return w.do(func() C.int {
		return C.cg_allgather_f32((*C.float)(unsafe.Pointer(&send[0])), C.int(len(send)), (*C.float)(unsafe.Pointer(&recv[0])))
	})
}

func (w *mpiWorld) allgatherI64(send, recv []int64) error {
	if len(send) == 0 {
		return nil
	}
	if len(send) > maxCount {
		return fmt.Errorf("allgather of %d values per rank: MPI takes at most %d", len(send), maxCount)
	}
	return w.do(func() C.int {
		return C.cg_allgather_i64((*C.int64_t)(unsafe.Pointer(&send[0])), C.int(len(send)), (*C.int64_t)(unsafe.Pointer(&recv[0])))
	})
}

func (w *mpiWorld) abort(code int) { w.do(func() C.int { return C.cg_abort(C.int(code)) }) }

func (w *mpiWorld) finalize() error { return w.do(func() C.int { return C.cg_finalize() }) }

// mpiError turns an MPI error code into a Go error with MPI's own message.
func mpiError(rc C.int) error {
	buf := make([]C.char, C.cg_max_error_string())
	var n C.int
	if C.cg_error_string(rc, &buf[0], &n) != 0 || n <= 0 {
		return fmt.Errorf("MPI error %d", int(rc))
	}
	return fmt.Errorf("MPI error %d: %s", int(rc), C.GoStringN(&buf[0], n))
}
