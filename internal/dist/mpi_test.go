//go:build mpi

package dist

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// mpirunArgs are the mpirun flags for a job of np ranks on this machine's loopback only: as
// root, unbound (Go needs every CPU), over TCP, started locally without ssh (plm isolated).
func mpirunArgs(np string) []string {
	return []string{"-np", np, "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "--mca", "plm", "isolated",
		"--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"}
}

// TestMPI runs the collectives on real ranks: the test binary starts itself under mpirun, and
// each rank checks what it receives.
func TestMPI(t *testing.T) {
	if os.Getenv("CLIPGO_DIST_WORKER") == "1" {
		c, err := Init()
		if err != nil {
			t.Fatal(err)
		}
		if err := exercise(c); err != nil {
			t.Fatalf("rank %d: %v", c.Rank(), err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	mpirun := testenv.Command(t, "mpirun", "apt-get install openmpi-bin libopenmpi-dev")
	for _, np := range []string{"2", "3"} {
		args := append(mpirunArgs(np), os.Args[0], "-test.run", "^TestMPI$", "-test.count", "1")
		cmd := exec.Command(mpirun, args...)
		cmd.Env = append(os.Environ(), "CLIPGO_DIST_WORKER=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %s: %v\n%s", np, err, out)
		}
		if n := strings.Count(string(out), "PASS"); n < 1 {
			t.Errorf("mpirun -np %s: no rank passed:\n%s", np, out)
		}
	}
}

// TestInitWithoutLauncher: the MPI build started alone runs as one process without starting
// MPI (Open MPI's singleton start would look for ssh to spawn its daemon).
func TestInitWithoutLauncher(t *testing.T) {
	if os.Getenv("CLIPGO_DIST_WORKER") == "1" {
		t.Skip("a rank of TestMPI")
	}
	for _, v := range launcherVars {
		t.Setenv(v, "")
	}
	c, err := Init()
	if err != nil || c.Size() != 1 || c.Rank() != 0 {
		t.Fatalf("Init without a launcher: %+v, %v; want a world of one", c, err)
	}
	if world != nil {
		t.Error("MPI was initialised without a launcher")
	}
}
