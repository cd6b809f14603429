//go:build !purego

package nn

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BLASName names the BLAS implementation the kernels run on, for benchmark reports.
const BLASName = "openblas"

// init plugs OpenBLAS (through cgo) into the kernels of this package and into gorgonia.
// OpenBLAS runs single-threaded: the kernels split work across goroutines themselves (rows of
// large products, heads of attention), and OpenBLAS threads spinning beside them measured
// slower on the 2-core machine.
func init() {
	C.openblas_set_num_threads(1)
	impl := netlib.Implementation{}
	blas32.Use(impl)
	blas64.Use(impl)
	G.Use(impl)
	tensor.Use(impl)
}
