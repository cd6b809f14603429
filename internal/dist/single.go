//go:build !mpi

package dist

// Enabled reports whether this build can join an MPI job (built with the tag mpi).
const Enabled = false

// Init returns a world of one process. It refuses to run under an MPI launcher that started
// several: this build cannot talk to the other ranks.
func Init() (*Comm, error) {
	if err := checkWorld(1, "this clipgo was built without MPI; build it with `make build-mpi` (go build -tags mpi with CC=mpicc)"); err != nil {
		return nil, err
	}
	return &Comm{rank: 0, size: 1, b: solo{}}, nil
}
