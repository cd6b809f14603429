package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// The test binary doubles as a prepare-like child process that reads captions from its real
// standard input: with INGEST_STDIN_HELPER set to a captions path ("-", "/dev/stdin") and
// INGEST_STDIN_IMAGES to the images root, it scans and prints what it got.
func TestMain(m *testing.M) {
	if file := os.Getenv("INGEST_STDIN_HELPER"); file != "" {
		os.Exit(stdinHelper(file, os.Getenv("INGEST_STDIN_IMAGES")))
	}
	os.Exit(m.Run())
}

func stdinHelper(file, images string) int {
	src, err := Captions(CaptionsOptions{File: file, Images: images})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	items, captions, first := 0, 0, ""
	err = src.Scan(context.Background(), func(it Item) error {
		if items == 0 {
			first = it.Key + "=" + it.Captions[0]
		}
		items++
		captions += len(it.Captions)
		return nil
	}, func(Reject) error { return nil })
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("%s %d %d %s\n", src.Format(), items, captions, first)
	return 0
}

// streamFixture makes an images root of 100 images and a token-format captions text of 3
// captions each, 300 lines and about 10 KiB: a reader that loses its first 4 KiB loses the
// first images' captions.
func streamFixture(t *testing.T) (images, captions string) {
	t.Helper()
	images = t.TempDir()
	files := map[string]string{}
	var b strings.Builder
	for c := 0; c < 3; c++ {
		for i := 0; i < 100; i++ {
			files[fmt.Sprintf("img%03d.jpg", i)] = "x"
			fmt.Fprintf(&b, "img%03d.jpg#%d\tcaption %d of image %d\n", i, c, c, i)
		}
	}
	writeTree(t, images, files)
	if b.Len() < 2*4096 {
		t.Fatalf("fixture of %d bytes is too small", b.Len())
	}
	return images, b.String()
}

// checkStream checks that every caption of streamFixture arrived.
func checkStream(t *testing.T, r result) {
	t.Helper()
	if len(r.items) != 100 || len(r.rejects) != 0 {
		t.Fatalf("%d items, rejects %v; want 100 items, none rejected", len(r.items), r.rejects)
	}
	for i, it := range r.items {
		want := fmt.Sprintf("img%03d", i)
		if it.Key != want || len(it.Captions) != 3 || it.Captions[0] != fmt.Sprintf("caption 0 of image %d", i) {
			t.Fatalf("item %d: %s %q, want %s with 3 captions", i, it.Key, it.Captions, want)
		}
		if !strings.HasPrefix(it.Origin, "stdin:") {
			t.Errorf("item %s origin %q", it.Key, it.Origin)
		}
	}
}

// TestCaptionsStdinStream feeds more than 4 KiB through a pipe in small writes, with the
// format detected and given: detection must not eat the first block of the stream.
func TestCaptionsStdinStream(t *testing.T) {
	images, text := streamFixture(t)
	for _, file := range []string{"-", "/dev/stdin"} {
		for _, format := range []string{"", FormatToken} {
			t.Run(file+" format "+format, func(t *testing.T) {
				pr, pw := io.Pipe()
				go func() {
					for line := range strings.Lines(text) {
						if _, err := io.WriteString(pw, line); err != nil {
							return
						}
					}
					pw.Close()
				}()
				defer pr.Close()
				src, err := Captions(CaptionsOptions{File: file, Images: images, Format: format, Stdin: pr})
				if err != nil {
					t.Fatal(err)
				}
				if src.Format() != FormatToken {
					t.Errorf("format %q", src.Format())
				}
				r, err := scanAll(t, src)
				if err != nil {
					t.Fatal(err)
				}
				checkStream(t, r)
				if _, err := scanAll(t, src); err == nil || !strings.Contains(err.Error(), "scanned once") {
					t.Errorf("second Scan of a stream: %v", err)
				}
			})
		}
	}
}

// TestCaptionsStdinProcess reads the process's real standard input, a pipe, as prepare does.
func TestCaptionsStdinProcess(t *testing.T) {
	images, text := streamFixture(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"-", "/dev/stdin"} {
		t.Run(file, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "INGEST_STDIN_HELPER="+file, "INGEST_STDIN_IMAGES="+images)
			cmd.Stdin = strings.NewReader(text) // exec copies it through a pipe
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v: %s", err, out)
			}
			if got, want := strings.TrimSpace(string(out)), "token 100 300 img000=caption 0 of image 0"; got != want {
				t.Fatalf("helper read %q, want %q", got, want)
			}
		})
	}
}

// TestCaptionsStdinCancel: a stream that never delivers must not keep detection or Scan from
// ending with their context.
func TestCaptionsStdinCancel(t *testing.T) {
	images, _ := streamFixture(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := CaptionsContext(ctx, CaptionsOptions{File: "-", Images: images, Stdin: pr})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("detection on a silent stream = %v, want the context's end", err)
	}

	pr2, pw2 := io.Pipe()
	defer pw2.Close()
	src, err := Captions(CaptionsOptions{File: "-", Images: images, Format: FormatToken, Stdin: pr2})
	if err != nil {
		t.Fatal(err)
	}
	go io.WriteString(pw2, "img000.jpg#0\tfirst line, then silence\n")
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	done := make(chan error, 1)
	go func() {
		done <- src.Scan(ctx2, func(Item) error { return nil }, func(Reject) error { return nil })
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan of a stalled stream = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Scan blocked on a stalled stream after its context ended")
	}
}

func TestCaptionsStdinNeedsImages(t *testing.T) {
	_, err := Captions(CaptionsOptions{File: "-", Stdin: strings.NewReader("a.jpg#0\tx\n")})
	if err == nil || !strings.Contains(err.Error(), "images root must be given") {
		t.Fatalf("stdin without an images root: %v", err)
	}
}

// TestPeekFirstLine checks detection over a reader that delivers one byte per read: it must
// consume nothing and stop at the first non-blank line or the limit.
func TestPeekFirstLine(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"\xef\xbb\xbfa.jpg#0\tx\nrest", "a.jpg#0\tx", ""},
		{"\r\n \n\t\nfilepath,title\r\nx", "filepath,title", ""},
		{"no newline at the end", "no newline at the end", ""},
		{"\n\n\n", "", "no line in the first"},
		{strings.Repeat(" ", 100) + "late", "", "no line in the first 64 bytes"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64), ""},
	} {
		br := bufio.NewReaderSize(iotestOneByte{strings.NewReader(tc.in)}, 64)
		got, err := peekFirstLine(br, 64)
		if string(got) != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("peekFirstLine(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != tc.in {
			t.Errorf("peekFirstLine(%q) consumed input: %q left", tc.in, rest)
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// mkfifo makes a named pipe at path, or skips the test where that is impossible.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// within runs fn and fails t if it blocks: every input below is a FIFO nobody writes.
func within(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("blocked on a FIFO for 5 s")
		return nil
	}
}

// TestNotRegularInputs: a FIFO (or directory) where a file is expected is refused by name.
func TestNotRegularInputs(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.jpg": "A", "sub/": ""})
	fifo := filepath.Join(dir, "caps.tsv")
	mkfifo(t, fifo)
	images, labels := writeIDX(t, dir, 3, 2, 2, false)
	fifoIDX := filepath.Join(dir, "fifo-idx")
	mkfifo(t, fifoIDX)
	mkfifo(t, filepath.Join(dir, "b.parquet"))

	for _, tc := range []struct {
		name string
		open func() error
		want string
	}{
		{"captions fifo, format detected", func() error {
			_, err := Captions(CaptionsOptions{File: fifo, Images: dir})
			return err
		}, fifo + " is a named pipe (FIFO)"},
		{"captions fifo, format given", func() error {
			_, err := Captions(CaptionsOptions{File: fifo, Images: dir, Format: FormatToken})
			return err
		}, fifo + " is a named pipe (FIFO)"},
		{"captions directory", func() error {
			_, err := Captions(CaptionsOptions{File: filepath.Join(dir, "sub"), Images: dir, Format: FormatToken})
			return err
		}, "sub is a directory"},
		{"captions device", func() error {
			_, err := Captions(CaptionsOptions{File: "/dev/null", Images: dir, Format: FormatToken})
			return err
		}, "/dev/null is a character device"},
		{"images root fifo", func() error {
			_, err := ImageFolder(fifo)
			return err
		}, "is a named pipe (FIFO), not a directory"},
		{"idx images fifo", func() error {
			_, err := IDX(fifoIDX, labels)
			return err
		}, fifoIDX + " is a named pipe (FIFO)"},
		{"idx labels fifo", func() error {
			_, err := IDX(images, fifoIDX)
			return err
		}, fifoIDX + " is a named pipe (FIFO)"},
		{"parquet glob matches a fifo", func() error {
			_, err := Parquet(filepath.Join(dir, "*.parquet"))
			return err
		}, "b.parquet is a named pipe (FIFO)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := within(t, tc.open)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(tc.name, "root") && !errors.Is(err, fileinput.ErrNotRegular) {
				t.Errorf("error %v does not wrap fileinput.ErrNotRegular", err)
			}
		})
	}
}

// TestFIFOImages: FIFOs among the images are rejected as not_a_file by both file sources, and
// an image replaced by a FIFO after Scan makes Load fail instead of block.
func TestFIFOImages(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"cls/a.jpg": "A", "caps.tsv": "cls/a.jpg#0\tok\ncls/p.jpg#0\tpipe\n"})
	mkfifo(t, filepath.Join(dir, "cls", "p.jpg"))

	folder, err := ImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	caps, err := Captions(CaptionsOptions{File: filepath.Join(dir, "caps.tsv"), Images: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []Source{folder, caps} {
		var r result
		err := within(t, func() error { var err error; r, err = scanAll(t, src); return err })
		if err != nil {
			t.Fatal(err)
		}
		if len(r.items) != 1 || len(r.rejects) != 1 || r.rejects[0].Reason != ReasonNotAFile ||
			!strings.Contains(r.rejects[0].Detail, "named pipe") {
			t.Fatalf("%s: items %v, rejects %v", src.Name(), r.items, r.rejects)
		}
		// Swap the good image for a FIFO after the scan: Load must refuse it at once.
		a := filepath.Join(dir, "cls", "a.jpg")
		if err := os.Remove(a); err != nil {
			t.Fatal(err)
		}
		mkfifo(t, a)
		err = within(t, func() error { _, err := r.items[0].Load(); return err })
		if !errors.Is(err, fileinput.ErrNotRegular) {
			t.Errorf("%s: Load of a FIFO = %v", src.Name(), err)
		}
		os.Remove(a)
		writeTree(t, dir, map[string]string{"cls/a.jpg": "A"})
	}
}

// TestParquetFileBecomesFIFO: a matched file replaced by a FIFO before Scan is rejected as a
// bad file, not read.
func TestParquetFileBecomesFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.parquet")
	writeTree(t, dir, map[string]string{"a.parquet": "not parquet yet"})
	src, err := Parquet(filepath.Join(dir, "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	mkfifo(t, p)
	var r result
	err = within(t, func() error { var err error; r, err = scanAll(t, src); return err })
	if err != nil || len(r.rejects) != 1 || r.rejects[0].Reason != ReasonBadFile || !strings.Contains(r.rejects[0].Detail, "named pipe") {
		t.Fatalf("rejects %v, err %v", r.rejects, err)
	}
}
