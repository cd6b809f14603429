package runlock

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a lock-holding child process: with RUNLOCK_HELPER_DIR set, it
// takes the lock, prints "locked <pid>" and then does what RUNLOCK_HELPER_THEN says.
func TestMain(m *testing.M) {
	if dir := os.Getenv("RUNLOCK_HELPER_DIR"); dir != "" {
		os.Exit(helper(dir, os.Getenv("RUNLOCK_HELPER_THEN")))
	}
	os.Exit(m.Run())
}

func helper(dir, then string) int {
	l, err := Acquire(dir, "helper")
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	fmt.Println("locked", os.Getpid())
	switch then {
	case "release":
		if err := l.Release(); err != nil {
			fmt.Println("error", err)
			return 3
		}
		return 0
	case "exit": // ends without Release: the file stays, the flock goes
		return 0
	}
	select {} // "hold": until killed
}

// startHolder starts a child that takes the lock on dir and waits until it has.
func startHolder(t *testing.T, dir, then string) (*exec.Cmd, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUNLOCK_HELPER_DIR="+dir, "RUNLOCK_HELPER_THEN="+then)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v (output %q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "locked" {
		t.Fatalf("helper said %q", line)
	}
	pid, _ := strconv.Atoi(f[1])
	if pid != cmd.Process.Pid {
		t.Fatalf("helper says pid %d, started as %d", pid, cmd.Process.Pid)
	}
	return cmd, pid
}

func TestAcquireRelease(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run") // Acquire creates it
	l, err := Acquire(dir, "pretrain")
	if err != nil {
		t.Fatal(err)
	}
	if l.Stale != nil || l.Warning() != "" {
		t.Errorf("fresh lock reports a stale holder: %q", l.Warning())
	}
	var rec Holder
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("lock file: %q, %v", b, err)
	}
	host, _ := os.Hostname()
	if rec.PID != os.Getpid() || rec.Host != host || rec.What != "pretrain" || rec.Command == "" || rec.Since.IsZero() {
		t.Errorf("lock file records %+v", rec)
	}

	_, err = Acquire(dir, "pretrain")
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire = %v, want a HeldError", err)
	}
	msg := err.Error()
	for _, want := range []string{dir, fmt.Sprintf("pid %d", os.Getpid()), "host " + host, "since " + rec.Since.Format(time.RFC3339), "pretrain: " + rec.Command, FileName} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not name %q", msg, want)
		}
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Release: %v", err)
	}
	l2, err := Acquire(dir, "pretrain")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if l2.Stale != nil {
		t.Errorf("a released lock is reported stale: %q", l2.Warning())
	}
	l2.Release()
}

// TestAcquireConcurrent races goroutines, each with its own descriptor, for one directory,
// many times, with releases in between: exactly one holds the lock at any time.
func TestAcquireConcurrent(t *testing.T) {
	dir := t.TempDir()
	var holders, maxHolders, wins, refusals int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				l, err := Acquire(dir, "race")
				if err != nil {
					if !errors.Is(err, ErrHeld) {
						t.Error(err)
						return
					}
					mu.Lock()
					refusals++
					mu.Unlock()
					continue
				}
				mu.Lock()
				holders++
				wins++
				maxHolders = max(maxHolders, holders)
				mu.Unlock()
				time.Sleep(50 * time.Microsecond)
				mu.Lock()
				holders--
				mu.Unlock()
				if err := l.Release(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if maxHolders != 1 || wins == 0 {
		t.Fatalf("%d holders at once (want 1), %d acquisitions, %d refusals", maxHolders, wins, refusals)
	}
}

// TestOtherProcessRefusedThenKilled: a second process is refused while the first holds the
// lock, and kill -9 of the holder frees it; the next writer takes it over with a warning.
func TestOtherProcessRefusedThenKilled(t *testing.T) {
	dir := t.TempDir()
	cmd, pid := startHolder(t, dir, "hold")

	_, err := Acquire(dir, "pretrain")
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("Acquire while pid %d holds the lock = %v, want a HeldError", pid, err)
	}
	if held.Holder.PID != pid || held.Holder.What != "helper" || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", pid)) {
		t.Fatalf("refusal names %+v: %v", held.Holder, err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := Acquire(dir, "pretrain")
	if err != nil {
		t.Fatalf("Acquire after kill -9 of the holder: %v", err)
	}
	defer l.Release()
	if l.Stale == nil || l.Stale.PID != pid || l.Stale.What != "helper" {
		t.Fatalf("stale holder %+v, want pid %d", l.Stale, pid)
	}
	if w := l.Warning(); !strings.Contains(w, fmt.Sprintf("pid %d", pid)) || !strings.Contains(w, "no longer running") {
		t.Errorf("warning %q", w)
	}
}

// TestHolderExits: a holder that exits without Release (a panic, os.Exit, log.Fatal) leaves
// its file but not its lock; one that releases leaves nothing.
func TestHolderExits(t *testing.T) {
	for _, tc := range []struct {
		then      string
		wantStale bool
	}{{"exit", true}, {"release", false}} {
		t.Run(tc.then, func(t *testing.T) {
			dir := t.TempDir()
			cmd, pid := startHolder(t, dir, tc.then)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("helper: %v", err)
			}
			l, err := Acquire(dir, "prepare")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			if got := l.Stale != nil; got != tc.wantStale {
				t.Fatalf("stale = %+v, want stale %v", l.Stale, tc.wantStale)
			}
			if tc.wantStale && l.Stale.PID != pid {
				t.Errorf("stale pid %d, want %d", l.Stale.PID, pid)
			}
		})
	}
}

func TestLeftoverLockFiles(t *testing.T) {
	tests := []struct {
		name, content string
		wantPID       int
		wantWarning   string
	}{
		{"dead holder", `{"pid":999999,"host":"elsewhere","what":"prepare","command":"clipgo prepare","since":"2026-01-02T03:04:05Z"}`,
			999999, "took over the lock of pid 999999 on host elsewhere since 2026-01-02T03:04:05Z (prepare: clipgo prepare)"},
		{"garbage", "\x00\x01not json", 0, "held no readable record"},
		{"empty", "", -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Acquire(dir, "pretrain")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			switch {
			case tc.wantPID < 0 && l.Stale != nil:
				t.Errorf("stale %+v, want none", l.Stale)
			case tc.wantPID >= 0 && (l.Stale == nil || l.Stale.PID != tc.wantPID):
				t.Errorf("stale %+v, want pid %d", l.Stale, tc.wantPID)
			}
			if w := l.Warning(); !strings.Contains(w, tc.wantWarning) || (tc.wantWarning == "") != (w == "") {
				t.Errorf("warning %q, want it to contain %q", w, tc.wantWarning)
			}
			var rec Holder
			b, _ := os.ReadFile(filepath.Join(dir, FileName))
			if err := json.Unmarshal(b, &rec); err != nil || rec.PID != os.Getpid() {
				t.Errorf("lock file after takeover: %q", b)
			}
		})
	}
}

func TestLockFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, FileName), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Acquire(dir, "x"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") || !strings.Contains(err.Error(), FileName) {
			t.Fatalf("Acquire with a FIFO as lock file = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire blocked on a FIFO lock file")
	}

	dir2 := t.TempDir()
	if err := os.Symlink(filepath.Join(dir2, "elsewhere"), filepath.Join(dir2, FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(dir2, "x"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Acquire with a symlink as lock file = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Acquire followed the symlink: %v", err)
	}
}

func TestAcquireNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := Acquire(file, "x"); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Acquire(file) = %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"/usr/local/bin/clipgo", "pretrain", "--out", "my runs/a", ""})
	if want := `clipgo pretrain --out "my runs/a" ""`; got != want {
		t.Errorf("commandLine = %s, want %s", got, want)
	}
	long := commandLine([]string{"x", strings.Repeat("é", 5000)})
	if len(long) > maxCommandBytes || !strings.HasSuffix(long, "...") {
		t.Errorf("long command line: %d bytes", len(long))
	}
}
