package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// idxBytes encodes an IDX file of unsigned bytes with the given dims and data.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUint8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// testImages returns n rows×cols images whose pixel (x, y) of image i is i*16 + y*cols + x,
// and labels i mod 10.
func testImages(n, rows, cols int) (pix, labels []byte) {
	for i := 0; i < n; i++ {
		for p := 0; p < rows*cols; p++ {
			pix = append(pix, byte(i*16+p))
		}
		labels = append(labels, byte(i%10))
	}
	return pix, labels
}

// writeIDX writes an image and a label file of n images into dir and returns their paths.
func writeIDX(t *testing.T, dir string, n, rows, cols int, gz bool) (images, labels string) {
	t.Helper()
	pix, lab := testImages(n, rows, cols)
	img, lbl := idxBytes([]int{n, rows, cols}, pix), idxBytes([]int{n}, lab)
	images, labels = filepath.Join(dir, "imgs-idx3-ubyte"), filepath.Join(dir, "lbls-idx1-ubyte")
	if gz {
		img, lbl, images, labels = gzipped(img), gzipped(lbl), images+".gz", labels+".gz"
	}
	if err := os.WriteFile(images, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(labels, lbl, 0o644); err != nil {
		t.Fatal(err)
	}
	return images, labels
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			const n, rows, cols = 12, 3, 2
			images, labels := writeIDX(t, t.TempDir(), n, rows, cols, gz)
			src, err := IDX(images, labels)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(src.Classes(), ","); got != "0,1,2,3,4,5,6,7,8,9" || src.Len() != n {
				t.Fatalf("classes %s, len %d", got, src.Len())
			}
			r, err := scanAll(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.items) != n || len(r.rejects) != 0 {
				t.Fatalf("%d items, rejects %v", len(r.items), r.rejects)
			}
			for i, it := range r.items {
				g, ok := it.Image.(*image.Gray)
				if !ok || g.Bounds() != image.Rect(0, 0, cols, rows) {
					t.Fatalf("item %d image %T %v", i, it.Image, it.Image.Bounds())
				}
				// Pixel (x, y) is byte y*cols + x of the image's record.
				if got, want := g.GrayAt(1, 2).Y, byte(i*16+2*cols+1); got != want {
					t.Errorf("item %d pixel (1,2) = %d, want %d", i, got, want)
				}
				if *it.Label != int32(i%10) || it.Captions[0] != NeutralCaption(fmt.Sprint(i%10)) || it.Load != nil {
					t.Errorf("item %d: %+v", i, it)
				}
				if want := fmt.Sprintf("imgs-idx3-ubyte-%06d", i); it.Key != want {
					t.Errorf("key %q, want %q", it.Key, want)
				}
			}
		})
	}
}

func TestIDXClassesAndBadLabel(t *testing.T) {
	images, labels := writeIDX(t, t.TempDir(), 12, 2, 2, false)
	src, err := IDX(images, labels, "zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
	if err != nil {
		t.Fatal(err)
	}
	r, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.items) != 11 || len(r.rejects) != 1 || r.rejects[0].Reason != ReasonBadLabel || r.rejects[0].Key != "imgs-idx3-ubyte-000009" {
		t.Fatalf("%d items, rejects %v", len(r.items), r.rejects)
	}
	if r.items[1].Captions[0] != "a photo of a one." {
		t.Errorf("caption %q", r.items[1].Captions[0])
	}
}

func TestIDXErrors(t *testing.T) {
	pix, lab := testImages(4, 2, 2)
	good, goodLabels := idxBytes([]int{4, 2, 2}, pix), idxBytes([]int{4}, lab)
	withMagic := func(b []byte, m ...byte) []byte { c := bytes.Clone(b); copy(c, m); return c }
	for _, tc := range []struct {
		name           string
		images, labels []byte
		want           string
	}{
		{"empty images", nil, goodLabels, "magic number: unexpected EOF"},
		{"empty labels", good, nil, "idx labels"},
		{"not idx", []byte("PNG not idx at all"), goodLabels, "not an IDX file"},
		{"float images", withMagic(good, 0, 0, 0x0D), goodLabels, "0x0d (float32)"},
		{"unknown type", withMagic(good, 0, 0, 0x42), goodLabels, "0x42 (unknown)"},
		{"labels as images", goodLabels, goodLabels, "1 dimensions, want 3"},
		{"images as labels", good, good, "3 dimensions, want 1"},
		{"short header", good[:9], goodLabels, "dimension 1"},
		{"count mismatch", good, idxBytes([]int{3}, lab[:3]), "4 images but"},
		{"truncated images", good[:len(good)-1], goodLabels, "image 3 of 4: unexpected EOF"},
		{"trailing image data", append(bytes.Clone(good), 0), goodLabels, "trailing data"},
		{"truncated labels", good, goodLabels[:len(goodLabels)-1], "header says 4 labels, file holds 3"},
		{"trailing labels", good, append(bytes.Clone(goodLabels), 1), "trailing data"},
		{"zero side", idxBytes([]int{4, 0, 2}, nil), goodLabels, "sides in [1, 1024]"},
		{"huge side", idxBytes([]int{1, 5000, 1}, nil), goodLabels, "sides in [1, 1024]"},
		{"too many images", idxBytes([]int{MaxIDXItems + 1, 1, 1}, nil), goodLabels, "limit"},
		{"too many labels", good, idxBytes([]int{MaxIDXItems + 1}, nil), "limit"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, goodLabels, "idx images"},
		{"corrupt gzip body", gzipped(good)[:30], goodLabels, "idx images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			images, labels := filepath.Join(dir, "i"), filepath.Join(dir, "l")
			os.WriteFile(images, tc.images, 0o644)
			os.WriteFile(labels, tc.labels, 0o644)
			src, err := IDX(images, labels)
			if err == nil {
				_, err = scanAll(t, src)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestFashionMNIST reads the Debian package's test set: 10,000 28×28 images, 1,000 per class.
func TestFashionMNIST(t *testing.T) {
	dir := "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(dir); err != nil {
		testenv.Missing(t, "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
	}
	src, err := IDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), FashionMNISTClasses()...)
	if err != nil {
		t.Fatal(err)
	}
	perClass := map[int32]int{}
	n := 0
	err = src.Scan(t.Context(), func(it Item) error {
		if it.Image.Bounds() != image.Rect(0, 0, 28, 28) {
			return fmt.Errorf("%s: bounds %v", it.Key, it.Image.Bounds())
		}
		perClass[*it.Label]++
		n++
		return nil
	}, func(rj Reject) error { return fmt.Errorf("reject %v", rj) })
	if err != nil {
		t.Fatal(err)
	}
	if n != 10000 || len(perClass) != 10 {
		t.Fatalf("%d images in %d classes", n, len(perClass))
	}
	for c, k := range perClass {
		if k != 1000 {
			t.Errorf("class %d (%s) has %d images", c, FashionMNISTClasses()[c], k)
		}
	}
}

// FuzzIDX reads arbitrary image and label bytes: errors are fine, panics and unbounded
// allocations are not, and whatever is read must agree with the header.
func FuzzIDX(f *testing.F) {
	pix, lab := testImages(3, 2, 2)
	good, goodLabels := idxBytes([]int{3, 2, 2}, pix), idxBytes([]int{3}, lab)
	f.Add(good, goodLabels)
	f.Add(gzipped(good), gzipped(goodLabels))
	f.Add(good[:10], goodLabels[:5])
	f.Add(idxBytes([]int{1 << 30, 1024, 1024}, nil), idxBytes([]int{1 << 30}, nil))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, []byte{0, 0, 8, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		lbl, lerr := readIDXLabels(bytes.NewReader(labels), "labels")
		if lerr == nil && len(lbl) > MaxIDXItems {
			t.Fatalf("%d labels", len(lbl))
		}
		m, err := openIDXImages(bytes.NewReader(images), "images")
		if err != nil {
			return
		}
		if m.n > MaxIDXItems || m.rows > MaxIDXSide || m.cols > MaxIDXSide || m.rows < 1 || m.cols < 1 {
			t.Fatalf("accepted header %d×%d×%d", m.n, m.rows, m.cols)
		}
		seen := 0
		err = m.each(func(i int, img *image.Gray) error {
			if i != seen || img.Bounds() != image.Rect(0, 0, m.cols, m.rows) {
				t.Fatalf("image %d (expected %d) bounds %v", i, seen, img.Bounds())
			}
			seen++
			return nil
		})
		if err == nil && seen != m.n {
			t.Fatalf("read %d of %d images without error", seen, m.n)
		}
	})
}
