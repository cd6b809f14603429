//go:build !mpi

package dist

import (
	"strings"
	"testing"
)

// TestInitRefusesAForeignLauncher: a build without MPI started by mpirun -np 2 must not train
// as two separate one-rank jobs.
func TestInitRefusesAForeignLauncher(t *testing.T) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"} {
		t.Setenv(v, "2")
		if _, err := Init(); err == nil || !strings.Contains(err.Error(), "built without MPI") {
			t.Errorf("%s=2: Init() error %v, want a refusal naming the missing MPI", v, err)
		}
		t.Setenv(v, "1")
		if c, err := Init(); err != nil || c.Size() != 1 {
			t.Errorf("%s=1: %v", v, err)
		}
		t.Setenv(v, "x")
		if _, err := Init(); err == nil {
			t.Errorf("%s=x accepted", v)
		}
		t.Setenv(v, "")
	}
}
