package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// result is everything a Scan produced.
type result struct {
	items   []Item
	rejects []Reject
}

// scanAll runs src.Scan to the end.
func scanAll(t *testing.T, src Source) (result, error) {
	t.Helper()
	var r result
	err := src.Scan(context.Background(),
		func(it Item) error { r.items = append(r.items, it); return nil },
		func(rj Reject) error { r.rejects = append(r.rejects, rj); return nil })
	return r, err
}

// reasons returns "origin reason" for every reject.
func (r result) reasons() []string {
	var out []string
	for _, rj := range r.rejects {
		out = append(out, rj.Origin+" "+rj.Reason)
	}
	return out
}

// keys returns "key: caption | caption" for every item.
func (r result) keys() []string {
	var out []string
	for _, it := range r.items {
		out = append(out, it.Key+": "+strings.Join(it.Captions, " | "))
	}
	return out
}

// writeTree creates files under dir: a name ending in "/" is a directory, a value starting with
// "->" a symlink to the rest.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNeutralCaption(t *testing.T) {
	for class, want := range map[string]string{
		"golden_retriever": "a photo of a golden retriever.",
		"apple":            "a photo of an apple.",
		"T-shirt/top":      "a photo of a T-shirt/top.",
		"  _ ":             "a photo of a thing.",
		"7":                "a photo of a 7.",
		"8":                "a photo of an 8.",
		"one":              "a photo of a one.",
		"unicorn":          "a photo of a unicorn.",
		"Eagle":            "a photo of an Eagle.",
	} {
		if got := NeutralCaption(class); got != want {
			t.Errorf("NeutralCaption(%q) = %q, want %q", class, got, want)
		}
	}
}

func TestRejectString(t *testing.T) {
	got := Reject{Origin: "c.tsv:3", Key: "a", Reason: ReasonEmptyCaption, Detail: "empty caption"}.String()
	if want := "c.tsv:3: empty_caption (key a): empty caption"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestResolve covers every image-level reject of a path, and what Load does with the rest.
func TestResolve(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"outside.jpg":         "secret",
		"images/a.jpg":        "AAAA",
		"images/sub/b.png":    "BB",
		"images/big.jpg":      "0123456789",
		"images/dir.jpg/":     "",
		"images/in.jpg":       "->a.jpg",
		"images/out.jpg":      "->../outside.jpg",
		"images/dangling.jpg": "->nowhere.jpg",
		"images/sub/up.jpg":   "->../a.jpg",
		"images/linkdir":      "->" + base,
		"images/sub/loop.jpg": "->loop.jpg",
		"images/sub/c.jpg":    "C",
	})
	root, err := newImageRoot(filepath.Join(base, "images"), 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel, clean, reason, load string
	}{
		{"a.jpg", "a.jpg", "", "AAAA"},
		{"./sub/../a.jpg", "a.jpg", "", "AAAA"},
		{"sub/b.png", "sub/b.png", "", "BB"},
		{"in.jpg", "in.jpg", "", "AAAA"},
		{"sub/up.jpg", "sub/up.jpg", "", "AAAA"},
		{"../outside.jpg", "", ReasonPathEscape, ""},
		{"sub/../../outside.jpg", "", ReasonPathEscape, ""},
		{"/etc/passwd", "", ReasonPathEscape, ""},
		{filepath.Join(base, "images", "a.jpg"), "", ReasonPathEscape, ""},
		{"out.jpg", "out.jpg", ReasonPathEscape, ""},
		{"linkdir/outside.jpg", "linkdir/outside.jpg", ReasonPathEscape, ""},
		{"missing.jpg", "missing.jpg", ReasonMissingFile, ""},
		{"dangling.jpg", "dangling.jpg", ReasonMissingFile, ""},
		{"a.jpg/x.jpg", "a.jpg/x.jpg", ReasonMissingFile, ""},
		{"sub/loop.jpg", "sub/loop.jpg", ReasonMissingFile, ""},
		{"dir.jpg", "dir.jpg", ReasonNotAFile, ""},
		{"big.jpg", "big.jpg", ReasonFileTooLarge, ""},
	} {
		clean, reason, detail := root.resolve(tc.rel)
		if reason != tc.reason || (tc.clean != "" && clean != filepath.FromSlash(tc.clean)) {
			t.Errorf("resolve(%q) = %q, %q (%s); want %q, %q", tc.rel, clean, reason, detail, tc.clean, tc.reason)
			continue
		}
		if reason != "" && detail == "" {
			t.Errorf("resolve(%q): reject %s without detail", tc.rel, reason)
		}
		if reason == "" {
			data, err := root.loader(clean)()
			if err != nil || string(data) != tc.load {
				t.Errorf("Load(%q) = %q, %v; want %q", tc.rel, data, err, tc.load)
			}
		}
	}

	// Load re-checks at read time: a file that grew past the limit, or was swapped for a
	// symlink out of the root after Scan, is refused.
	load := root.loader("a.jpg")
	if err := os.WriteFile(filepath.Join(base, "images", "a.jpg"), []byte("far too long now"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := load(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load of a grown file: %v, want ErrTooLarge", err)
	}
	loadC := root.loader(filepath.FromSlash("sub/c.jpg"))
	os.Remove(filepath.Join(base, "images", "sub", "c.jpg"))
	if err := os.Symlink(filepath.Join(base, "outside.jpg"), filepath.Join(base, "images", "sub", "c.jpg")); err != nil {
		t.Fatal(err)
	}
	if data, err := loadC(); err == nil {
		t.Errorf("Load through a symlink swapped in after Scan read %q", data)
	}
}

func TestNewImageRootErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"file": "x"})
	for _, p := range []string{filepath.Join(dir, "nope"), filepath.Join(dir, "file")} {
		if _, err := newImageRoot(p, 1); err == nil {
			t.Errorf("newImageRoot(%s) accepted", p)
		}
	}
}

func TestKeyOf(t *testing.T) {
	for in, want := range map[string]string{
		"1000268201_693b08cb0e.jpg": "1000268201_693b08cb0e",
		"dogs/rex.png":              "dogs/rex",
		"a.b.c.jpeg":                "a.b.c",
		"noext":                     "noext",
	} {
		if got := keyOf(filepath.FromSlash(in)); got != want {
			t.Errorf("keyOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsImageFile(t *testing.T) {
	for name, want := range map[string]bool{"a.jpg": true, "A.JPEG": true, "b.png": true, "c.webp": true,
		"d.gif": true, "e.bmp": true, "f.tiff": false, "README": false, "g.jpg.txt": false} {
		if IsImageFile(name) != want {
			t.Errorf("IsImageFile(%q) = %v", name, !want)
		}
	}
}

func TestImageFolder(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"secret.jpg":              "s",
		"root/zebra/z1.jpg":       "z1",
		"root/apple_pie/b.PNG":    "b",
		"root/apple_pie/a.jpg":    "a",
		"root/apple_pie/x/y.jpeg": "y",
		"root/apple_pie/.hidden":  "h",
		"root/apple_pie/.git/c":   "c",
		"root/apple_pie/notes.md": "n",
		"root/apple_pie/out.jpg":  "->../../secret.jpg",
		"root/apple_pie/in.jpg":   "->a.jpg",
		"root/empty/":             "",
		"root/.cache/q.jpg":       "q",
		"root/loose.jpg":          "l",
	})
	src, err := ImageFolder(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := src.Classes(), []string{"apple_pie", "empty", "zebra"}; !slices.Equal(got, want) {
		t.Fatalf("Classes() = %q, want %q", got, want)
	}
	r, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range r.items {
		data, err := it.Load()
		if err != nil {
			t.Fatalf("%s: Load: %v", it.Key, err)
		}
		got = append(got, it.Key+" "+string(data)+" "+it.Captions[0]+" "+strings.Repeat("*", int(*it.Label)))
		if it.Image != nil || it.Split != "" || it.Origin == "" {
			t.Errorf("item %+v", it)
		}
	}
	want := []string{
		"apple_pie/a a a photo of an apple pie. ",
		"apple_pie/b b a photo of an apple pie. ",
		"apple_pie/in a a photo of an apple pie. ",
		"apple_pie/x/y y a photo of an apple pie. ",
		"zebra/z1 z1 a photo of a zebra. **",
	}
	if !slices.Equal(got, want) {
		t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var rejects []string
	for _, rj := range r.rejects {
		rejects = append(rejects, rj.Key+" "+rj.Reason)
	}
	if want := []string{"apple_pie/notes " + ReasonUnsupportedType, "apple_pie/out " + ReasonPathEscape}; !slices.Equal(rejects, want) {
		t.Errorf("rejects %q, want %q", rejects, want)
	}

	for _, bad := range []string{filepath.Join(base, "root", "empty"), filepath.Join(base, "nope")} {
		if _, err := ImageFolder(bad); err == nil {
			t.Errorf("ImageFolder(%s) accepted a folder without classes", bad)
		}
	}
}

// TestScanStops checks that every source stops at a callback's error, returning it unchanged,
// and at a cancelled context.
func TestScanStops(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"c.tsv": "a.jpg#0\tx\nb.jpg#0\ty\n", "a.jpg": "a", "b.jpg": "b",
		"f/k/a.jpg": "a", "f/k/b.jpg": "b"})
	imgs, labels := writeIDX(t, dir, 3, 2, 2, false)
	capSrc, err := Captions(CaptionsOptions{File: filepath.Join(dir, "c.tsv")})
	if err != nil {
		t.Fatal(err)
	}
	folder, err := ImageFolder(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := IDX(imgs, labels)
	if err != nil {
		t.Fatal(err)
	}
	syn, err := Synthetic(SyntheticOptions{N: 3, ZeroShotN: 2, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	for _, src := range []Source{capSrc, folder, idx, syn} {
		n := 0
		err := src.Scan(context.Background(), func(Item) error { n++; return stop }, func(Reject) error { return nil })
		if err != stop || n != 1 {
			t.Errorf("%s: Scan after a yield error returned %v after %d items", src.Name(), err, n)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = src.Scan(ctx, func(Item) error { return nil }, func(Reject) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Scan with a cancelled context returned %v", src.Name(), err)
		}
	}
}
