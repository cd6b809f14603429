// Package imageproc decodes untrusted image bytes into opaque 8-bit RGB, resizes them once at
// prepare time (img2dataset's resize modes) and turns them into normalised float32 CHW tensors
// at training time (open_clip's RandomResizedCrop / eval transforms).
//
// Decoding is bounded: the byte size, the dimensions the header declares and the pixel memory
// they cost at the declared depth and layout are checked against Limits before any pixel
// buffer is allocated, and every failure wraps one of the
// sentinel errors ErrEmpty, ErrTooLarge, ErrUnsupported or ErrCorrupt.
//
// # Inputs as the reference stack sees them
//
// A CLIP model's embedding of an image is only comparable with open_clip's when the pixels
// that reach it are the same: open_clip's preprocess(Image.open(f)) decodes with PIL, that is
// libjpeg-turbo with its default accurate integer IDCT and "fancy" (triangle-filter) chroma
// upsampling, and resizes with PIL's fixed-point bicubic filter, rounding to 8 bits after
// each pass. Go's image/jpeg upsamples chroma by replication and has its own IDCT and colour
// rounding (pixels differed from PIL's by up to 97 levels on 4:2:0 test JPEGs and 60 on
// Flickr8k photographs), and the float resampler of the training transform rounds
// differently; together they moved embeddings of the same file by up to 3e-2 (cosine 0.991).
//
// So, in the default (cgo) build, JPEGs are decoded by libjpeg-turbo itself through a small
// cgo binding (jpeg_libjpeg.go) with the settings PIL uses (Pillow's JpegDecode.c: ISLOW,
// fancy upsampling, libjpeg's YCbCr->RGB; CMYK read Adobe-inverted and converted with PIL's
// integer formula), and EvalTransform (evalpil.go) is torchvision's Resize(size, BICUBIC) +
// CenterCrop(size) computed with PIL's integer arithmetic, then ToTensor and Normalize in
// float32. Both match PIL 9.4 / torchvision 0.14 exactly (0 levels) on JPEGs of every layout
// PIL writes and on Flickr8k photographs (TestMatchesPIL, against
// scripts/peers/pil_preprocess.py). A binding rather than a pure-Go port: reproducing
// libjpeg's IDCT, upsampling and colour conversion bit for bit in Go would be a second JPEG
// decoder to keep, and the library PIL links is the definition of the target; no Go module
// wrapping libjpeg-turbo is both served by the module proxy and kept up; the project links
// OpenBLAS through cgo already, and Debian ships the library (libjpeg62-turbo-dev). The
// purego build keeps image/jpeg and is not PIL-exact.
//
// Known differences that remain: a CMYK JPEG is converted to RGB when decoded, while open_clip
// resizes it in CMYK and converts after the crop (1 level measured); translucent PNG/WebP/GIF
// pixels are composited over white (img2dataset's choice) where open_clip's convert("RGB")
// drops alpha; scan data cut short by a marker is refused where PIL fills it with grey; the
// eval transform reads the decoded original only when prepare kept it (resize mode "no"):
// a dataset resized at prepare time was resized by img2dataset's filters first.
package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"github.com/clipgo/clipgo/internal/readable"
)

// Limits bound what Decode accepts. A zero field takes the value of DefaultLimits.
type Limits struct {
	MaxBytes  int   // encoded size in bytes
	MaxPixels int64 // width × height declared by the header
	MaxSide   int   // longest side in pixels declared by the header
	// MaxDecodeBytes bounds the pixel memory one Decode allocates: the decoder's buffers
	// (which depend on the bit depth, colour type, subsampling, progressive or interlaced
	// coding the header declares) plus the RGB conversion. Decode works it out from the
	// header and refuses an image over it before decoding.
	MaxDecodeBytes int64
}

// DefaultLimits accepts photographs up to 50 megapixels (PIL's decompression-bomb threshold is
// 89 M) and holds a decode worker to 200 MiB of pixels: a 50-megapixel 8-bit RGB(A) PNG or
// baseline JPEG (colour, CMYK or grey) fits, while costlier layouts fit at fewer pixels:
// greyscale or paletted PNG ~42 M, progressive 4:2:0 JPEG ~29 M, 16-bit RGB(A) PNG ~26 M,
// progressive 4:4:4 JPEG ~20 M (the cgo build's libjpeg; the purego build's image/jpeg needs
// more for progressive JPEGs).
var DefaultLimits = Limits{MaxBytes: 64 << 20, MaxPixels: 50_000_000, MaxSide: 32768, MaxDecodeBytes: 200 << 20}

func (l Limits) orDefault() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultLimits.MaxSide
	}
	if l.MaxDecodeBytes <= 0 {
		l.MaxDecodeBytes = DefaultLimits.MaxDecodeBytes
	}
	return l
}

// Info describes what Decode found.
type Info struct {
	Format        string // "jpeg", "png", "gif", "webp" or "bmp"
	Width, Height int    // pixels, as decoded
	Model         string // colour model the decoder produced: "ycbcr", "rgb" (an RGB JPEG), "gray", "gray16", "rgba", "nrgba", "rgba64", "nrgba64", "paletted", "cmyk", "nycbcra", or "other"
	Alpha         bool   // some pixel was not opaque and was composited over white
}

// format is one supported container: how to recognise it and how to decode it.
type format struct {
	name   string
	magic  func([]byte) bool
	config func([]byte) (image.Config, error)
	decode func(io.Reader) (image.Image, error) // nil for JPEG, which decodeJPEG decodes
}

// fromReader adapts an image/* header reader to the formats table.
func fromReader(f func(io.Reader) (image.Config, error)) func([]byte) (image.Config, error) {
	return func(b []byte) (image.Config, error) { return f(bytes.NewReader(b)) }
}

// formats is a fixed table rather than image.RegisterFormat's global registry, so that another
// package registering, say, TIFF cannot widen what Decode accepts.
var formats = []format{
	{"jpeg", prefix("\xff\xd8"), jpegConfig, nil},
	{"png", prefix("\x89PNG\r\n\x1a\n"), fromReader(png.DecodeConfig), png.Decode},
	{"gif", prefix("GIF87a", "GIF89a"), fromReader(gif.DecodeConfig), gif.Decode}, // Decode stops after the first frame
	{"webp", func(b []byte) bool { return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" },
		fromReader(webp.DecodeConfig), webp.Decode},
	{"bmp", prefix("BM"), fromReader(bmp.DecodeConfig), bmp.Decode},
}

// prefix returns a matcher for bytes that start with any of the signatures.
func prefix(signatures ...string) func([]byte) bool {
	return func(b []byte) bool {
		for _, s := range signatures {
			if bytes.HasPrefix(b, []byte(s)) {
				return true
			}
		}
		return false
	}
}

// knownUnsupported names common formats that Decode recognises only to reject them clearly.
func knownUnsupported(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return "isobmff (" + sanitize(b[8:12]) + ")" // HEIC, AVIF
	case bytes.HasPrefix(b, []byte("\x00\x00\x01\x00")):
		return "ico"
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")):
		return "xml/svg/html"
	}
	return ""
}

func sanitize(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// Decode decodes one image of untrusted bytes into opaque 8-bit RGB.
//
// The result is an *image.Gray for a greyscale JPEG and an *image.RGBA with every alpha 255
// for everything else (an *image.YCbCr for an ordinary JPEG in the purego build); all have
// Bounds().Min = (0, 0). JPEGs are decoded as PIL decodes them (see the package doc). Grey, 16-bit, paletted and CMYK/YCCK
// inputs are converted; translucent pixels are composited over white, as img2dataset does
// (transparent logos and icons are drawn for light backgrounds; black would turn dark line art
// invisible). A GIF yields its first frame.
//
// Decode checks len(b), then the dimensions the header declares and the pixel memory they
// cost at the declared depth and layout (Limits.MaxDecodeBytes), against lim before decoding,
// and never panics: a decoder panic comes back as ErrCorrupt. Decoder output of 4 or 8 bytes
// per pixel is converted in place; the RGBA result then shares (and keeps) its buffer.
func Decode(b []byte, lim Limits) (img image.Image, info Info, err error) {
	lim = lim.orDefault()
	if len(b) == 0 {
		return nil, Info{}, fmt.Errorf("%w: 0 bytes", ErrEmpty)
	}
	if len(b) > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrTooLarge, len(b), lim.MaxBytes)
	}
	var f *format
	for i := range formats {
		if formats[i].magic(b) {
			f = &formats[i]
			break
		}
	}
	if f == nil {
		if name := knownUnsupported(b); name != "" {
			return nil, Info{}, fmt.Errorf("%w: %s", ErrUnsupported, name)
		}
		return nil, Info{}, fmt.Errorf("%w: unrecognised signature %s", ErrUnsupported, readable.Quote(sanitize(b[:min(len(b), 8)])))
	}
	info.Format = f.name

	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: %s decoder panicked: %v", ErrCorrupt, f.name, r)
		}
	}()

	cfg, err := f.config(b)
	if err != nil {
		return nil, info, classify(f.name, "header", err)
	}
	w, h := cfg.Width, cfg.Height
	switch {
	case w < 0 || h < 0:
		return nil, info, fmt.Errorf("%w: %s header declares %dx%d", ErrCorrupt, f.name, w, h)
	case w == 0 || h == 0:
		return nil, info, fmt.Errorf("%w: %s header declares %dx%d", ErrEmpty, f.name, w, h)
	case w > lim.MaxSide || h > lim.MaxSide:
		return nil, info, fmt.Errorf("%w: %s header declares %dx%d, a side beyond the limit of %d", ErrTooLarge, f.name, w, h, lim.MaxSide)
	case int64(w)*int64(h) > lim.MaxPixels:
		return nil, info, fmt.Errorf("%w: %s header declares %dx%d = %d pixels, beyond the limit of %d", ErrTooLarge, f.name, w, h, int64(w)*int64(h), lim.MaxPixels)
	}
	if cost := estimateCost(f.name, b, cfg); cost.bytes > lim.MaxDecodeBytes {
		return nil, info, fmt.Errorf("%w: %s header declares %dx%d %s: decoding needs %s, beyond the limit of %s per image",
			ErrTooLarge, f.name, w, h, cost.layout, mib(cost.bytes), mib(lim.MaxDecodeBytes))
	}

	if f.decode == nil { // JPEG: decoded as PIL decodes it, straight into its result type
		img, info.Model, err = decodeJPEG(b, cfg, lim.MaxDecodeBytes)
		if err != nil {
			return nil, info, err
		}
		info.Width, info.Height = w, h
		return img, info, nil
	}
	raw, err := f.decode(bytes.NewReader(b))
	if err != nil {
		return nil, info, classify(f.name, "data", err)
	}
	r := raw.Bounds()
	if r.Empty() {
		return nil, info, fmt.Errorf("%w: %s decoded to %dx%d", ErrEmpty, f.name, r.Dx(), r.Dy())
	}
	if r.Dx() > w || r.Dy() > h {
		// The header was checked against the limits, so the pixels must not exceed it.
		return nil, info, fmt.Errorf("%w: %s decoded %dx%d from a %dx%d header", ErrCorrupt, f.name, r.Dx(), r.Dy(), w, h)
	}
	img, info.Model, info.Alpha = toRGBOwned(raw)
	info.Width, info.Height = r.Dx(), r.Dy()
	return img, info, nil
}

// mib formats a byte count in MiB for messages.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// classify wraps a decoder's error in the sentinel that fits it.
func classify(format, part string, err error) error {
	var (
		jpegUnsup jpeg.UnsupportedError
		pngUnsup  png.UnsupportedError
	)
	switch {
	case Reason(err) != "other": // already classified (the JPEG header reader does that)
		return err
	case errors.As(err, &jpegUnsup), errors.As(err, &pngUnsup), errors.Is(err, bmp.ErrUnsupported):
		return fmt.Errorf("%w: %s %s: %w", ErrUnsupported, format, part, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s %s truncated: %w", ErrCorrupt, format, part, err)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrCorrupt, format, part, err)
}
