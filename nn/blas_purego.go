//go:build purego

package nn

// BLASName names the BLAS implementation the kernels run on, for benchmark reports. The purego
// build keeps gonum's pure-Go BLAS (the blas32/blas64 default): slower, but no cgo.
const BLASName = "gonum"
