package fileinput

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noHang runs fn and fails t if it has not returned within a few seconds: opening a FIFO
// that nobody writes blocks forever.
func noHang[T any](t *testing.T, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("blocked for 5 s: the call waits on a non-regular file")
		panic("unreachable")
	}
}

// tree makes a directory with a regular file, a FIFO, a directory and symlinks to each.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"file.txt", "fifo", "sub"} {
		if err := os.Symlink(n, filepath.Join(dir, "link-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenRegular(t *testing.T) {
	dir := tree(t)
	tests := []struct {
		name, path string
		want       string // "" accepted; else a substring of the error
	}{
		{"regular file", "file.txt", ""},
		{"symlink to a regular file", "link-file.txt", ""},
		{"fifo", "fifo", "fifo is a named pipe (FIFO), not a regular file"},
		{"symlink to a fifo", "link-fifo", "link-fifo is a named pipe (FIFO), not a regular file"},
		{"directory", "sub", "sub is a directory, not a regular file"},
		{"symlink to a directory", "link-sub", "is a directory"},
		{"missing", "nothing", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.path)
			for _, open := range []struct {
				how string
				fn  func() (*os.File, error)
			}{
				{"OpenRegular", func() (*os.File, error) { return OpenRegular(path) }},
				{"OpenRegularIn", func() (*os.File, error) {
					root, err := os.OpenRoot(dir)
					if err != nil {
						t.Fatal(err)
					}
					defer root.Close()
					return OpenRegularIn(root, tc.path)
				}},
			} {
				type res struct {
					f   *os.File
					err error
				}
				r := noHang(t, func() res { f, err := open.fn(); return res{f, err} })
				if tc.want == "" {
					if r.err != nil {
						t.Fatalf("%s: %v", open.how, r.err)
					}
					b, err := io.ReadAll(r.f)
					r.f.Close()
					if err != nil || string(b) != "hello" {
						t.Fatalf("%s: read %q, %v", open.how, b, err)
					}
					continue
				}
				if r.err == nil {
					r.f.Close()
					t.Fatalf("%s: opened %s, want an error containing %q", open.how, tc.path, tc.want)
				}
				if !strings.Contains(r.err.Error(), tc.want) || !strings.Contains(r.err.Error(), tc.path) {
					t.Errorf("%s: error %q, want it to name %s and contain %q", open.how, r.err, tc.path, tc.want)
				}
				if tc.path != "nothing" && !errors.Is(r.err, ErrNotRegular) {
					t.Errorf("%s: error %v does not wrap ErrNotRegular", open.how, r.err)
				}
			}
		})
	}
}

func TestOpenRegularDevice(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	err := noHang(t, func() error { _, err := OpenRegular("/dev/null"); return err })
	var nr *NotRegularError
	if !errors.As(err, &nr) || nr.Mode&fs.ModeCharDevice == 0 {
		t.Fatalf("OpenRegular(/dev/null) = %v, want a NotRegularError for a character device", err)
	}
	if !strings.Contains(err.Error(), "/dev/null is a character device") {
		t.Errorf("error %q", err)
	}
}

// TestCheckOpenedFIFO covers the race the stat cannot: a FIFO in place of the file by the time
// it is opened. Opened with O_NONBLOCK it must open at once and be refused.
func TestCheckOpenedFIFO(t *testing.T) {
	dir := tree(t)
	path := filepath.Join(dir, "fifo")
	err := noHang(t, func() error {
		f, err := os.OpenFile(path, os.O_RDONLY|nonblock, 0)
		if err != nil {
			return err
		}
		_, err = CheckOpened(f, path)
		return err
	})
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("CheckOpened(fifo) = %v, want ErrNotRegular", err)
	}
}

func TestCheck(t *testing.T) {
	dir := tree(t)
	if st, err := Check(filepath.Join(dir, "link-file.txt")); err != nil || st.Size() != 5 {
		t.Fatalf("Check(link to file) = %v, %v", st, err)
	}
	if _, err := Check(filepath.Join(dir, "fifo")); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("Check(fifo) = %v", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := tree(t)
	if b, err := ReadFile(filepath.Join(dir, "file.txt"), 5); err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile at the limit = %q, %v", b, err)
	}
	if b, err := ReadFile(filepath.Join(dir, "file.txt"), 0); err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile without a limit = %q, %v", b, err)
	}
	_, err := ReadFile(filepath.Join(dir, "file.txt"), 4)
	if err == nil || !strings.Contains(err.Error(), "file.txt has 5 bytes, beyond the limit of 4") {
		t.Fatalf("ReadFile over the limit = %v", err)
	}
	err = noHang(t, func() error { _, err := ReadFile(filepath.Join(dir, "fifo"), 0); return err })
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("ReadFile(fifo) = %v", err)
	}
}

func TestOpenStream(t *testing.T) {
	dir := tree(t)
	for _, p := range []string{"-", "/dev/stdin"} {
		if !IsStdin(p) {
			t.Errorf("IsStdin(%q) = false", p)
		}
		rc, name, err := Open(p, strings.NewReader("from stdin"))
		if err != nil || name != "standard input" {
			t.Fatalf("Open(%q) = %v, %q", p, err, name)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "from stdin" {
			t.Errorf("Open(%q) read %q", p, b)
		}
	}
	for _, p := range []string{"/dev/fd/0", "/proc/self/fd/0", "./-", ""} {
		if IsStdin(p) {
			t.Errorf("IsStdin(%q) = true", p)
		}
	}
	rc, name, err := Open(filepath.Join(dir, "file.txt"), nil)
	if err != nil || name != filepath.Join(dir, "file.txt") {
		t.Fatalf("Open(file) = %v, %q", err, name)
	}
	rc.Close()
	err = noHang(t, func() error { _, _, err := Open(filepath.Join(dir, "fifo"), nil); return err })
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "standard input") {
		t.Fatalf("Open(fifo) = %v, want a refusal that points at standard input", err)
	}
}

func TestDescribe(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		0: "a regular file", fs.ModeDir: "a directory", fs.ModeNamedPipe: "a named pipe (FIFO)",
		fs.ModeSocket: "a socket", fs.ModeDevice | fs.ModeCharDevice: "a character device",
		fs.ModeDevice: "a block device", fs.ModeSymlink: "a symbolic link", fs.ModeIrregular: "an irregular file",
	} {
		if got := Describe(m); got != want {
			t.Errorf("Describe(%v) = %q, want %q", m, got, want)
		}
	}
}
