package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"

	"github.com/disintegration/imaging"
)

// ResizeMode is img2dataset's resize_mode: how prepare fits an image to Resizer.Size.
type ResizeMode int

const (
	// ResizeNo keeps the image as decoded.
	ResizeNo ResizeMode = iota
	// ResizeKeepRatio scales the shortest side to Size, keeping the aspect ratio (the long
	// side ends up >= Size).
	ResizeKeepRatio
	// ResizeCenterCrop scales the shortest side to Size, then crops the centre Size×Size.
	ResizeCenterCrop
	// ResizeBorder scales the longest side to Size, keeping the aspect ratio, then pads to
	// Size×Size with Resizer.Border, the image centred.
	ResizeBorder
)

var resizeModeNames = [...]string{"no", "keep_ratio", "center_crop", "border"}

// String returns img2dataset's name of m.
func (m ResizeMode) String() string {
	if m < 0 || int(m) >= len(resizeModeNames) {
		return fmt.Sprintf("ResizeMode(%d)", int(m))
	}
	return resizeModeNames[m]
}

// ParseResizeMode parses img2dataset's names: "no", "keep_ratio", "center_crop", "border".
func ParseResizeMode(s string) (ResizeMode, error) {
	for i, n := range resizeModeNames {
		if s == n {
			return ResizeMode(i), nil
		}
	}
	return 0, fmt.Errorf("imageproc: unknown resize mode %q (want one of no, keep_ratio, center_crop, border)", s)
}

// MarshalText lets a ResizeMode appear by name in JSON and YAML configs.
func (m ResizeMode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(resizeModeNames) {
		return nil, fmt.Errorf("imageproc: invalid resize mode %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses a ResizeMode by name.
func (m *ResizeMode) UnmarshalText(b []byte) error {
	v, err := ParseResizeMode(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// Resizer is img2dataset's prepare-time resize. Downscaling uses a box filter (img2dataset's
// default cv2.INTER_AREA), upscaling Lanczos (its cv2.INTER_LANCZOS4), both through imaging.
// New sizes round half to even (albumentations uses Python's round).
type Resizer struct {
	Size         int
	Mode         ResizeMode
	OnlyIfBigger bool     // img2dataset's resize_only_if_bigger: never upscale
	Border       [3]uint8 // RGB padding of ResizeBorder. Zero is black; img2dataset pads white (255, 255, 255)
}

// Resize returns img fitted to r. The result is opaque 8-bit RGB (an *image.RGBA, or img
// itself when nothing changes); translucent input is composited over white first.
func (r Resizer) Resize(img image.Image) (image.Image, error) {
	if r.Mode < ResizeNo || r.Mode > ResizeBorder {
		return nil, fmt.Errorf("imageproc: invalid resize mode %d", int(r.Mode))
	}
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("imageproc: resize: %w", ErrEmpty)
	}
	if r.Mode == ResizeNo {
		return img, nil
	}
	if r.Size <= 0 {
		return nil, fmt.Errorf("imageproc: resize size %d must be positive", r.Size)
	}
	img = opaque(img)
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := r.Size
	var side int // the side that is scaled to n
	if r.Mode == ResizeBorder {
		side = max(w, h)
	} else {
		side = min(w, h)
	}
	if r.OnlyIfBigger && side <= n {
		return img, nil // img2dataset skips the crop / pad too
	}
	scale := float64(n) / float64(side)
	nw := max(1, int(math.RoundToEven(float64(w)*scale)))
	nh := max(1, int(math.RoundToEven(float64(h)*scale)))
	filter := imaging.Lanczos
	if side > n {
		filter = imaging.Box
	}
	var out *image.NRGBA
	if nw == w && nh == h {
		out = imaging.Clone(img)
	} else {
		out = imaging.Resize(img, nw, nh, filter)
	}
	switch r.Mode {
	case ResizeCenterCrop:
		x0, y0 := (nw-n)/2, (nh-n)/2 // albumentations' center_crop floors
		out = imaging.Crop(out, image.Rect(x0, y0, x0+n, y0+n))
	case ResizeBorder:
		bg := imaging.New(n, n, color.NRGBA{r.Border[0], r.Border[1], r.Border[2], 0xff})
		out = imaging.Paste(bg, out, image.Pt((n-nw)/2, (n-nh)/2))
	}
	// imaging works in NRGBA; the image is opaque, so its bytes are already valid RGBA.
	return &image.RGBA{Pix: out.Pix, Stride: out.Stride, Rect: out.Rect}, nil
}

// opaque returns img unchanged when it is one of the opaque 8-bit types, else its opaque RGB
// conversion (translucent pixels over white).
func opaque(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray:
		return m
	case *image.RGBA:
		if m.Opaque() {
			return m
		}
	}
	out, _, _ := toRGB(img)
	return out
}

// DefaultJPEGQuality is img2dataset's default encode_quality.
const DefaultJPEGQuality = 95

// EncodeJPEG encodes img as a baseline JPEG at quality 1..100; 0 means DefaultJPEGQuality.
// Translucent pixels are composited over white (the JPEG encoder alone would use black).
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	if quality == 0 {
		quality = DefaultJPEGQuality
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("imageproc: JPEG quality %d outside 1..100", quality)
	}
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("imageproc: encode: %w", ErrEmpty)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, opaque(img), &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("imageproc: encode JPEG: %w", err)
	}
	return buf.Bytes(), nil
}
