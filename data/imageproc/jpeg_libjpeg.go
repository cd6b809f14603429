//go:build !purego

package imageproc

// JPEGs are decoded by libjpeg-turbo (the library PIL decodes them with) through its libjpeg
// API, with the settings PIL's decoder (Pillow src/libImaging/JpegDecode.c) leaves in place:
// accurate integer IDCT (JDCT_ISLOW), "fancy" (triangle-filter) chroma upsampling, colour
// conversion inside libjpeg. Go's image/jpeg upsamples chroma by pixel replication and has its
// own IDCT and YCbCr->RGB rounding; on photographs it differed from PIL by up to 79 levels,
// which moved CLIP embeddings of the same file by up to 3e-2. No Go module wrapping
// libjpeg-turbo is both served by the module proxy and kept up, and the calls needed are few,
// so this file binds the C library itself (the project links OpenBLAS through cgo already).
//
// Each C call below is self-contained: it creates, uses and destroys its decompressor within
// the call, so that the Go byte slices it is handed are never kept by C, and libjpeg's
// error_exit longjmps only within the C function that set the jump buffer.

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int truncated;
	char msg[JMSG_LENGTH_MAX];
} cg_error;

static void cg_error_exit(j_common_ptr c) {
	cg_error *e = (cg_error *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jump, 1);
}

// cg_emit_message keeps libjpeg quiet (PIL suppresses its messages too) and notes data that
// ends before the image does: the file itself (PIL reports "image file is truncated"), or the
// scan data at a marker, which libjpeg fills with grey and PIL accepts; both are refused here.
static void cg_emit_message(j_common_ptr c, int level) {
	cg_error *e = (cg_error *)c->err;
	if (level < 0) {
		c->err->num_warnings++;
		if (c->err->msg_code == JWRN_JPEG_EOF || c->err->msg_code == JWRN_HIT_MARKER) {
			e->truncated = 1;
		}
	}
}

typedef struct {
	int width, height, components, color_space, progressive, truncated;
	int h[4], v[4];
	char msg[JMSG_LENGTH_MAX];
} cg_info;

// cg_jpeg reads the header of buf into info and, when out is not NULL, decodes the image into
// out: 4 bytes per pixel (RGBX, alpha 255) for 3 components, CMYK as libjpeg delivers it
// (Adobe-inverted for 4 components), 1 byte per pixel for greyscale. max_memory bounds
// libjpeg's own buffers (a progressive image's coefficients). It returns 0 on success and 1
// on a libjpeg error, whose message is in info->msg; 2 when the component count is one PIL
// cannot decode either; 3 when out_len does not fit the image.
static int cg_jpeg(const unsigned char *buf, unsigned long len, unsigned char *out, size_t out_len,
                   long max_memory, cg_info *info) {
	struct jpeg_decompress_struct cinfo;
	cg_error err;
	memset(&err, 0, sizeof(err));
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = cg_error_exit;
	err.pub.emit_message = cg_emit_message;
	if (setjmp(err.jump)) {
		memcpy(info->msg, err.msg, sizeof(info->msg));
		info->truncated = err.truncated;
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.mem->max_memory_to_use = max_memory;
	jpeg_mem_src(&cinfo, buf, len);
	jpeg_read_header(&cinfo, TRUE);
	info->width = cinfo.image_width;
	info->height = cinfo.image_height;
	info->components = cinfo.num_components;
	info->color_space = cinfo.jpeg_color_space;
	info->progressive = cinfo.progressive_mode;
	for (int i = 0; i < cinfo.num_components && i < 4; i++) {
		info->h[i] = cinfo.comp_info[i].h_samp_factor;
		info->v[i] = cinfo.comp_info[i].v_samp_factor;
	}
	if (out == NULL) {
		jpeg_destroy_decompress(&cinfo);
		return 0;
	}
	int bpp;
	switch (cinfo.num_components) {
	case 1: cinfo.out_color_space = JCS_GRAYSCALE; bpp = 1; break;
	case 3: cinfo.out_color_space = JCS_EXT_RGBX; bpp = 4; break;
	case 4: cinfo.out_color_space = JCS_CMYK; bpp = 4; break;
	default:
		jpeg_destroy_decompress(&cinfo);
		return 2;
	}
	if (out_len < (size_t)cinfo.image_width * cinfo.image_height * bpp) {
		jpeg_destroy_decompress(&cinfo);
		return 3;
	}
	jpeg_start_decompress(&cinfo);
	if (cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height ||
	    cinfo.output_components != bpp) {
		jpeg_destroy_decompress(&cinfo);
		return 3;
	}
	size_t stride = (size_t)cinfo.output_width * bpp;
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * stride;
		if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
			break;
		}
	}
	int short_rows = cinfo.output_scanline < cinfo.output_height;
	if (!short_rows) {
		jpeg_finish_decompress(&cinfo);
	}
	info->truncated = err.truncated || short_rows;
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"unsafe"
)

// jpegHeader is what libjpeg reads from a JPEG's headers.
type jpegHeader struct {
	width, height, components int
	progressive               bool
	colorSpace                int // libjpeg's J_COLOR_SPACE
	h, v                      [4]int
}

// libjpeg's J_COLOR_SPACE values used here (jpeglib.h).
const (
	jcsGrayscale = C.JCS_GRAYSCALE
	jcsRGB       = C.JCS_RGB
	jcsYCbCr     = C.JCS_YCbCr
	jcsCMYK      = C.JCS_CMYK
	jcsYCCK      = C.JCS_YCCK
)

// callJPEG runs cg_jpeg on b; out nil reads the header only.
func callJPEG(b []byte, out []byte, maxMemory int64) (jpegHeader, int, string, bool) {
	var info C.cg_info
	var outPtr *C.uchar
	if len(out) > 0 {
		outPtr = (*C.uchar)(unsafe.Pointer(&out[0]))
	}
	rc := C.cg_jpeg((*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b)), outPtr, C.size_t(len(out)), C.long(maxMemory), &info)
	hdr := jpegHeader{
		width: int(info.width), height: int(info.height), components: int(info.components),
		progressive: info.progressive != 0, colorSpace: int(info.color_space),
	}
	for i := range 4 {
		hdr.h[i], hdr.v[i] = int(info.h[i]), int(info.v[i])
	}
	return hdr, int(rc), C.GoString(&info.msg[0]), info.truncated != 0
}

// jpegConfig reads a JPEG's header through libjpeg, which decides what it can decode.
func jpegConfig(b []byte) (image.Config, error) {
	hdr, rc, msg, truncated := callJPEG(b, nil, 0)
	if rc != 0 {
		if truncated {
			return image.Config{}, fmt.Errorf("%w: jpeg header truncated: %s", ErrCorrupt, msg)
		}
		return image.Config{}, jpegError("header", msg)
	}
	cfg := image.Config{Width: hdr.width, Height: hdr.height, ColorModel: color.YCbCrModel}
	switch hdr.components {
	case 1:
		cfg.ColorModel = color.GrayModel
	case 3:
		if hdr.colorSpace == jcsRGB {
			cfg.ColorModel = color.RGBAModel
		}
	case 4:
		cfg.ColorModel = color.CMYKModel
	default:
		return image.Config{}, fmt.Errorf("%w: jpeg with %d components (PIL reads 1, 3 or 4)", ErrUnsupported, hdr.components)
	}
	return cfg, nil
}

// jpegError classifies a libjpeg error message: running out of the memory allowed is too
// large; the features libjpeg was built without or does not implement are unsupported;
// everything else is a corrupt file.
func jpegError(part, msg string) error {
	lower := strings.ToLower(msg)
	// libjpeg's buffers beyond max_memory_to_use would go to a backing store, which this
	// build of libjpeg-turbo (jmemnobs) refuses; or malloc failed.
	if strings.Contains(lower, "backing store") || strings.Contains(lower, "insufficient memory") {
		return fmt.Errorf("%w: jpeg %s: libjpeg needs more memory than the limit allows: %s", ErrTooLarge, part, msg)
	}
	for _, s := range []string{"unsupported", "not supported", "not implemented", "omitted at compile time"} {
		if strings.Contains(lower, s) {
			return fmt.Errorf("%w: jpeg %s: %s", ErrUnsupported, part, msg)
		}
	}
	return fmt.Errorf("%w: jpeg %s: %s", ErrCorrupt, part, msg)
}

// decodeJPEG decodes a JPEG whose header passed the limits into opaque 8-bit RGB as PIL's
// Image.open(f).convert("RGB") does: an *image.Gray for one component, an *image.RGBA
// otherwise (CMYK converted in place by PIL's formulae). maxMemory bounds libjpeg's buffers.
func decodeJPEG(b []byte, cfg image.Config, maxMemory int64) (image.Image, string, error) {
	w, h := cfg.Width, cfg.Height
	bpp, model := 4, "ycbcr"
	switch cfg.ColorModel {
	case color.GrayModel:
		bpp, model = 1, "gray"
	case color.RGBAModel:
		model = "rgb"
	case color.CMYKModel:
		model = "cmyk"
	}
	out := make([]byte, w*h*bpp)
	_, rc, msg, truncated := callJPEG(b, out, maxMemory)
	switch {
	case truncated:
		// PIL refuses a truncated file ("image file is truncated") unless told otherwise;
		// scan data cut short by a marker it would fill with grey, which no training or
		// evaluation sample should be.
		return nil, model, fmt.Errorf("%w: jpeg data truncated: the image ends before its %dx%d pixels are coded", ErrCorrupt, w, h)
	case rc == 1:
		return nil, model, jpegError("data", msg)
	case rc == 2:
		return nil, model, fmt.Errorf("%w: jpeg component count changed between reads", ErrCorrupt)
	case rc != 0:
		return nil, model, fmt.Errorf("%w: jpeg output size differs from its header's %dx%d", ErrCorrupt, w, h)
	}
	r := image.Rect(0, 0, w, h)
	if bpp == 1 {
		return &image.Gray{Pix: out, Stride: w, Rect: r}, model, nil
	}
	if model == "cmyk" {
		cmykToRGBPIL(out)
	}
	return &image.RGBA{Pix: out, Stride: 4 * w, Rect: r}, model, nil
}

// jpegCost bounds what decoding a JPEG through libjpeg allocates: the RGBX (or CMYK, or grey)
// output, and libjpeg's own buffers: 64 int16 coefficients for every block of the image when
// it is coded in several scans (progressive, or components in separate scans), else a few
// strips of whole-width rows per component for the IDCT output, the context rows of fancy
// upsampling and the colour conversion. libjpeg's share is also capped at run time by
// max_memory_to_use, which fails a decode that would need more.
func jpegCost(b []byte, cfg image.Config, w, h int64) decodeCost {
	fr, ok := scanJPEG(b)
	n, kind, bpp := 3, "YCbCr", int64(4)
	switch cfg.ColorModel {
	case color.GrayModel:
		n, kind, bpp = 1, "grey", 1
	case color.RGBAModel:
		kind = "RGB"
	case color.CMYKModel:
		n, kind = 4, "CMYK/YCCK"
	}
	if !ok || len(fr.comps) != n {
		// Markers this scan cannot follow (libjpeg judged the header valid): assume the
		// worst libjpeg allows, sampling factors up to 4, coded in several scans.
		fr = jpegFrame{progressive: true, multiScan: true}
		for range n {
			fr.comps = append(fr.comps, jpegComp{h: 4, v: 4})
		}
	}
	var hmax, vmax int64 = 1, 1
	for _, c := range fr.comps {
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	mxx, myy := (w+8*hmax-1)/(8*hmax), (h+8*vmax-1)/(8*vmax) // whole MCUs
	var blocks int64
	for _, c := range fr.comps {
		blocks = addSat(blocks, mulSat(mulSat(mxx, myy), max(c.h, 1)*max(c.v, 1)))
	}
	total := mulSat(mulSat(w, h), bpp) // the output
	// Strips: per component up to (vmax·8 rows) × 4 (IDCT output, context rows, upsampler)
	// of the padded width, plus a converted row.
	total = addSat(total, mulSat(mulSat(mxx*8*hmax, int64(len(fr.comps))), 32*vmax+1))
	if fr.progressive || fr.multiScan {
		total = addSat(total, mulSat(blocks, 128))
		if fr.progressive {
			kind = "progressive " + kind
		} else {
			kind = "multi-scan " + kind
		}
	}
	px := mulSat(w, h)
	return decodeCost{total, fmt.Sprintf("%s, %.3g bytes/pixel", kind, float64(total)/float64(max(px, 1)))}
}
