// Package ingest reads the raw material of a data set — a captions file beside a folder of
// images (a Hugging Face imagefolder among them), a folder of images per class, MNIST-style
// IDX files, foreign Parquet, webdataset tar shards, a list of image URLs to download, or the
// built-in synthetic scenes — and hands it to `prepare` as Items, one per image, with every
// caption of that image grouped under one key.
//
// A source rejects only what it can judge without decoding an image (a path that escapes the
// images root, a missing file, an empty caption, a malformed line, ...), reporting each as a
// Reject with a Reason and carrying on; `prepare` decodes, resizes, de-duplicates and splits.
// A Scan returns an error only for what stops it: the source itself is unreadable, ctx is
// done, or a callback failed.
//
// Every parser of outside bytes here is bounded by exported limits (Limits, the IDX
// constants), so a hostile file costs bounded memory.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/readable"
)

// Item is one image with its captions.
type Item struct {
	Key      string   // unique within its source, stable across runs; no file extension
	Captions []string // every valid caption of the image, in file order; at least one
	Label    *int32   // index into Source.Classes() for labelled sources, nil otherwise
	Origin   string   // where it came from, for messages: "captions.tsv:123", a path
	// Load returns the encoded image bytes of file sources, refusing files over the source's
	// MaxImageBytes with an error wrapping ErrTooLarge. It is safe to call from any goroutine,
	// also after Scan has returned. Nil when Image is set.
	Load  func() ([]byte, error)
	Image image.Image // pixels, for sources that make them (synthetic, IDX); nil when Load is set
	Split string      // "" lets prepare split; a source may force one, e.g. SplitZeroShot
}

// SplitZeroShot is the split of the synthetic zero-shot evaluation scenes.
const SplitZeroShot = "zeroshot"

// Reject is one thing a source skipped: a line, a caption or an image.
type Reject struct {
	Origin string // "captions.tsv:123", a path
	Key    string // the image key when known
	Reason string // one of the Reason constants
	Detail string // human-readable specifics
}

func (r Reject) String() string {
	s := r.Origin + ": " + r.Reason
	if r.Key != "" {
		s += " (key " + r.Key + ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// Source is where raw items come from.
type Source interface {
	// Name describes the source for the manifest and for messages.
	Name() string
	// Classes returns the class names that Item.Label indexes, nil for unlabelled sources.
	Classes() []string
	// Scan calls yield for every item and reject for everything skipped, in source order, on
	// the calling goroutine. It stops at the first error of yield or reject, returning it
	// unchanged, and at ctx's end, returning ctx.Err().
	Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error
}

// Reasons a source rejects something. Image-level reasons drop the image; caption-level ones
// drop one caption (the image is kept while it has one left); line-level ones drop one line
// of a captions file.
const (
	ReasonMissingFile     = "missing_file"      // image: the file does not exist
	ReasonPathEscape      = "path_escape"       // image: absolute, "..", or a symlink out of the root
	ReasonNotAFile        = "not_a_file"        // image: a directory or device, not a regular file
	ReasonFileTooLarge    = "file_too_large"    // image: bigger than MaxImageBytes
	ReasonUnsupportedType = "unsupported_type"  // image: an extension that is not an image format
	ReasonNoCaption       = "no_caption"        // image: every caption of it was rejected
	ReasonBadLabel        = "bad_label"         // image: label outside the class list
	ReasonEmptyCaption    = "empty_caption"     // caption: empty or only white space
	ReasonInvalidUTF8     = "invalid_utf8"      // caption, or a line whose image path is not UTF-8
	ReasonCaptionTooLong  = "caption_too_long"  // caption: over MaxCaptionBytes
	ReasonTooManyCaptions = "too_many_captions" // caption: beyond MaxCaptionsPerImage of its image
	ReasonBadLine         = "bad_line"          // line: malformed for its format
	ReasonLineTooLong     = "line_too_long"     // line: over MaxLineBytes
)

// Default limits; a zero field of Limits means its default.
const (
	DefaultMaxImageBytes       = 32 << 20
	DefaultMaxLineBytes        = 64 << 10
	DefaultMaxCaptionBytes     = 4 << 10
	DefaultMaxCaptionsPerImage = 100
	DefaultMaxRecords          = 20_000_000
)

// Limits bound what a source accepts. The zero value means the defaults.
type Limits struct {
	MaxImageBytes       int64 // Item.Load refuses bigger files; Scan rejects them up front
	MaxLineBytes        int   // a longer line (CSV: record) of a captions file is rejected
	MaxCaptionBytes     int   // a longer caption (after white-space clean-up) is rejected
	MaxCaptionsPerImage int   // further captions of an image are rejected
	MaxRecords          int   // a captions file with more records is refused: Scan fails
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = DefaultMaxImageBytes
	}
	def(&l.MaxLineBytes, DefaultMaxLineBytes)
	def(&l.MaxCaptionBytes, DefaultMaxCaptionBytes)
	def(&l.MaxCaptionsPerImage, DefaultMaxCaptionsPerImage)
	def(&l.MaxRecords, DefaultMaxRecords)
	return l
}

// ErrTooLarge is wrapped by Item.Load's error for a file over the byte limit.
var ErrTooLarge = errors.New("file exceeds the byte limit")

// imageExtensions are the file extensions (lower case) that file sources take for images: the
// formats data/imageproc decodes.
var imageExtensions = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".webp": true, ".bmp": true}

// IsImageFile reports whether name has an image extension (case-insensitive).
func IsImageFile(name string) bool { return imageExtensions[strings.ToLower(filepath.Ext(name))] }

// imageRoot resolves image paths inside one directory and loads them without leaving it.
type imageRoot struct {
	dir      string // absolute
	real     string // dir with symlinks resolved
	maxBytes int64
}

func newImageRoot(dir string, maxBytes int64) (*imageRoot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("images root %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("images root: %w", err)
	}
	if st, err := os.Stat(real); err != nil {
		return nil, fmt.Errorf("images root: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("images root %s is %s, not a directory", dir, fileinput.Describe(st.Mode()))
	}
	return &imageRoot{dir: abs, real: real, maxBytes: maxBytes}, nil
}

// resolve checks the image at rel (slash- or OS-separated, relative to the root) and returns its
// cleaned relative path, or a reject reason and detail. Paths are judged lexically first (no
// absolute paths, no climbing out with ".."), then by where their symlinks really lead.
func (r *imageRoot) resolve(rel string) (clean, reason, detail string) {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		return "", ReasonPathEscape, fmt.Sprintf("absolute path %s; paths must be relative to the images root", readable.Quote(rel))
	}
	rel = filepath.FromSlash(rel)
	if !filepath.IsLocal(rel) {
		return "", ReasonPathEscape, fmt.Sprintf("path %s leaves the images root", readable.Quote(rel))
	}
	clean = filepath.Clean(rel)
	real, err := filepath.EvalSymlinks(filepath.Join(r.dir, clean))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return clean, ReasonMissingFile, fmt.Sprintf("no file %s in %s", clean, r.dir)
		}
		return clean, ReasonMissingFile, err.Error()
	}
	if inside, err := filepath.Rel(r.real, real); err != nil || !filepath.IsLocal(inside) {
		return clean, ReasonPathEscape, fmt.Sprintf("%s resolves to %s, outside the images root", clean, real)
	}
	st, err := os.Stat(real)
	switch {
	case err != nil:
		return clean, ReasonMissingFile, err.Error()
	case !st.Mode().IsRegular():
		return clean, ReasonNotAFile, fmt.Sprintf("%s is %s, not a regular file", clean, fileinput.Describe(st.Mode()))
	case st.Size() > r.maxBytes:
		return clean, ReasonFileTooLarge, fmt.Sprintf("%s has %d bytes, limit %d", clean, st.Size(), r.maxBytes)
	}
	return clean, "", ""
}

// loader returns an Item.Load for the resolved path clean.
func (r *imageRoot) loader(clean string) func() ([]byte, error) {
	return func() ([]byte, error) { return readFileIn(r.dir, clean, r.maxBytes) }
}

// readFileIn reads rel inside dir through os.Root, so that a symlink swapped in after Scan
// still cannot lead outside dir, refuses what is not a regular file (a FIFO swapped in after
// Scan must not block the reader), and refuses to read more than limit bytes.
func readFileIn(dir, rel string, limit int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := fileinput.OpenRegularIn(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	path := filepath.Join(dir, rel)
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes: %w (%d)", path, st.Size(), ErrTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: grew past %d bytes while read: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}

// keyOf returns the item key of a cleaned relative path: slash-separated, extension dropped.
func keyOf(clean string) string {
	return strings.TrimSuffix(filepath.ToSlash(clean), filepath.Ext(clean))
}

// NeutralCaption returns the caption given to an image known only by its class name:
// "a photo of a golden retriever." for "golden_retriever". It keeps shards of labelled
// sets valid; it is not meant as a training signal.
func NeutralCaption(class string) string {
	name := strings.Join(strings.Fields(strings.ReplaceAll(class, "_", " ")), " ")
	if name == "" {
		name = "thing"
	}
	return "a photo of " + article(name) + " " + name + "."
}

// article picks "a" or "an" for a phrase by its spelling, with the common exceptions ("a one",
// "a unicorn", "an 8", "an 11").
func article(phrase string) string {
	lower := strings.ToLower(phrase)
	for _, p := range []string{"one", "uni", "use", "eu"} {
		if strings.HasPrefix(lower, p) {
			return "a"
		}
	}
	first, _, _ := strings.Cut(lower, " ")
	if strings.ContainsRune("aeiou8", rune(lower[0])) || first == "11" || first == "18" {
		return "an"
	}
	return "a"
}

func int32p(v int) *int32 { x := int32(v); return &x }
