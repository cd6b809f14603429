// Package testenv finds the material tests need outside the repository (../shared, system
// packages) and decides what a test does when it is missing: skip with a reason, or fail when
// CLIPGO_REQUIRE_ALL=1 (as CI sets it), so that a missing dependency never hides as a skip.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireAll reports whether every optional dependency must be present (CLIPGO_REQUIRE_ALL=1).
func RequireAll() bool { return os.Getenv("CLIPGO_REQUIRE_ALL") == "1" }

// Missing skips t with reason, or fails it when RequireAll is set.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("CLIPGO_REQUIRE_ALL=1 and a dependency is missing: %s", reason)
	}
	t.Skipf("skipped: %s (set CLIPGO_REQUIRE_ALL=1 to make this a failure)", reason)
}

// RepoRoot returns the directory holding the module's go.mod, found by walking up from the
// working directory (a test's working directory is its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedDir returns the shared material directory: $CLIPGO_SHARED when set, else ../shared
// beside the repository root. A missing directory is handled by Missing.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CLIPGO_SHARED")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(RepoRoot(t)), "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		Missing(t, "shared material not found at "+dir+" (set CLIPGO_SHARED)")
	}
	return dir
}

// SharedFile returns the path of rel inside SharedDir, handling a missing file with Missing.
func SharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "shared file not found: "+p)
	}
	return p
}

// Command returns the path of an executable on PATH, handling its absence with Missing.
func Command(t testing.TB, name, installHint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not installed ("+installHint+")")
	}
	return p
}
