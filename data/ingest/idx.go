package ingest

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// Limits of the IDX reader: the header's counts are checked against these before anything is
// allocated.
const (
	MaxIDXItems = 10_000_000 // images (and labels) per file
	MaxIDXSide  = 1024       // rows and columns of an image
)

// IDX dtype codes (the third magic byte). Only idxUint8 is read; the others are named in errors.
const idxUint8 = 0x08

var idxTypes = map[byte]string{0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}

// FashionMNISTClasses returns the Fashion-MNIST class names in label order.
func FashionMNISTClasses() []string {
	return []string{"T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}
}

// IDXSource reads MNIST-style IDX files; see IDX.
type IDXSource struct {
	imagesPath string
	labels     []uint8
	rows, cols int
	classes    []string
}

// IDX returns a labelled source of the images of an IDX image file (magic 0x00000803: unsigned
// bytes, dims count × rows × cols) with the labels of an IDX label file (0x00000801, dims
// count), each gzipped or not (the gzip magic decides), as used by MNIST and Fashion-MNIST.
// Images become *image.Gray. Classes names the labels; when it is empty they are named by
// number, "0".."9" (or up to the largest label). Headers and all labels are checked here, so a
// bad pair of files fails before Scan; a label outside classes is rejected as bad_label.
func IDX(imagesPath, labelsPath string, classes ...string) (*IDXSource, error) {
	labels, err := readIDXLabelsFile(labelsPath)
	if err != nil {
		return nil, err
	}
	f, err := fileinput.OpenRegular(imagesPath)
	if err != nil {
		return nil, fmt.Errorf("idx images: %w", err)
	}
	defer f.Close()
	imgs, err := openIDXImages(f, imagesPath)
	if err != nil {
		return nil, err
	}
	if imgs.n != len(labels) {
		return nil, fmt.Errorf("idx: %s has %d images but %s has %d labels", imagesPath, imgs.n, labelsPath, len(labels))
	}
	if len(classes) == 0 {
		top := 9
		for _, l := range labels {
			top = max(top, int(l))
		}
		for i := 0; i <= top; i++ {
			classes = append(classes, strconv.Itoa(i))
		}
	}
	return &IDXSource{imagesPath: imagesPath, labels: labels, rows: imgs.rows, cols: imgs.cols,
		classes: append([]string(nil), classes...)}, nil
}

// Name returns "idx:<images file>".
func (s *IDXSource) Name() string { return "idx:" + s.imagesPath }

// Classes returns the class names in label order.
func (s *IDXSource) Classes() []string { return append([]string(nil), s.classes...) }

// Len returns the number of images.
func (s *IDXSource) Len() int { return len(s.labels) }

// Scan yields every image with its label, keyed "<images file base>-<index, 6 digits>" (the
// file's ".gz" dropped). A file that ends early, holds trailing bytes, or changed since IDX
// read its header fails the scan.
func (s *IDXSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	f, err := fileinput.OpenRegular(s.imagesPath)
	if err != nil {
		return fmt.Errorf("idx images: %w", err)
	}
	defer f.Close()
	imgs, err := openIDXImages(f, s.imagesPath)
	if err != nil {
		return err
	}
	if imgs.n != len(s.labels) || imgs.rows != s.rows || imgs.cols != s.cols {
		return fmt.Errorf("idx images %s: header changed since the source was opened", s.imagesPath)
	}
	base := strings.TrimSuffix(filepath.Base(s.imagesPath), ".gz")
	return imgs.each(func(i int, img *image.Gray) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := fmt.Sprintf("%s-%06d", base, i)
		origin := fmt.Sprintf("%s#%d", s.imagesPath, i)
		label := int(s.labels[i])
		if label >= len(s.classes) {
			return reject(Reject{Origin: origin, Key: key, Reason: ReasonBadLabel,
				Detail: fmt.Sprintf("label %d, but %d classes", label, len(s.classes))})
		}
		return yield(Item{Key: key, Captions: []string{NeutralCaption(s.classes[label])},
			Label: int32p(label), Origin: origin, Image: img})
	})
}

// idxReader returns r decompressed when it starts with the gzip magic.
func idxReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// readIDXHeader reads an IDX header of an unsigned-byte array with ndims dimensions and
// returns them.
func readIDXHeader(r io.Reader, ndims int) ([]int, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("reading the magic number: %w", noEOF(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("not an IDX file: magic % x does not start with 00 00", magic)
	}
	if magic[2] != idxUint8 {
		name, ok := idxTypes[magic[2]]
		if !ok {
			name = "unknown"
		}
		return nil, fmt.Errorf("element type 0x%02x (%s), want 0x08 (unsigned byte)", magic[2], name)
	}
	if int(magic[3]) != ndims {
		return nil, fmt.Errorf("%d dimensions, want %d", magic[3], ndims)
	}
	dims := make([]int, ndims)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("reading dimension %d: %w", i, noEOF(err))
		}
		dims[i] = int(d)
	}
	return dims, nil
}

// noEOF turns a plain EOF inside a structure into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func readIDXLabelsFile(path string) ([]uint8, error) {
	f, err := fileinput.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("idx labels: %w", err)
	}
	defer f.Close()
	return readIDXLabels(f, path)
}

// readIDXLabels reads a whole IDX label file (possibly gzipped).
func readIDXLabels(r io.Reader, name string) ([]uint8, error) {
	r, err := idxReader(r)
	if err != nil {
		return nil, fmt.Errorf("idx labels %s: %w", name, err)
	}
	dims, err := readIDXHeader(r, 1)
	if err != nil {
		return nil, fmt.Errorf("idx labels %s: %w", name, err)
	}
	n := dims[0]
	if n > MaxIDXItems {
		return nil, fmt.Errorf("idx labels %s: %d labels, limit %d", name, n, MaxIDXItems)
	}
	// Grow with the data rather than trusting n for the allocation.
	labels, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, fmt.Errorf("idx labels %s: %w", name, err)
	}
	if len(labels) < n {
		return nil, fmt.Errorf("idx labels %s: header says %d labels, file holds %d", name, n, len(labels))
	}
	if err := expectEnd(r); err != nil {
		return nil, fmt.Errorf("idx labels %s: after %d labels: %w", name, n, err)
	}
	return labels, nil
}

// expectEnd fails unless r is at its end.
func expectEnd(r io.Reader) error {
	var b [1]byte
	switch n, err := io.ReadFull(r, b[:]); {
	case n > 0:
		return errors.New("trailing data")
	case err == io.EOF:
		return nil
	default:
		return err
	}
}

// idxImages streams the images of an IDX image file.
type idxImages struct {
	r             io.Reader
	name          string
	n, rows, cols int
}

func openIDXImages(r io.Reader, name string) (*idxImages, error) {
	r, err := idxReader(r)
	if err != nil {
		return nil, fmt.Errorf("idx images %s: %w", name, err)
	}
	dims, err := readIDXHeader(r, 3)
	if err != nil {
		return nil, fmt.Errorf("idx images %s: %w", name, err)
	}
	n, rows, cols := dims[0], dims[1], dims[2]
	switch {
	case n > MaxIDXItems:
		return nil, fmt.Errorf("idx images %s: %d images, limit %d", name, n, MaxIDXItems)
	case rows < 1 || cols < 1 || rows > MaxIDXSide || cols > MaxIDXSide:
		return nil, fmt.Errorf("idx images %s: images of %d×%d, want sides in [1, %d]", name, rows, cols, MaxIDXSide)
	}
	return &idxImages{r: r, name: name, n: n, rows: rows, cols: cols}, nil
}

// each calls fn with every image in order, each in its own buffer, then checks the file ends.
func (m *idxImages) each(fn func(i int, img *image.Gray) error) error {
	for i := 0; i < m.n; i++ {
		img := image.NewGray(image.Rect(0, 0, m.cols, m.rows))
		if _, err := io.ReadFull(m.r, img.Pix); err != nil {
			return fmt.Errorf("idx images %s: image %d of %d: %w", m.name, i, m.n, noEOF(err))
		}
		if err := fn(i, img); err != nil {
			return err
		}
	}
	if err := expectEnd(m.r); err != nil {
		return fmt.Errorf("idx images %s: after %d images: %w", m.name, m.n, err)
	}
	return nil
}
