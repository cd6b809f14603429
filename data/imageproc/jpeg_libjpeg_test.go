//go:build !purego

package imageproc

import (
	"errors"
	"testing"
)

// TestLibjpegMemoryCap: libjpeg's own buffers (a progressive image's coefficients, which Go's
// allocator does not see) are capped by max_memory_to_use: below what the image needs the
// decode fails with ErrTooLarge instead of allocating, and at the estimate it succeeds.
func TestLibjpegMemoryCap(t *testing.T) {
	b := goTestdata(t, "video-001.progressive.jpeg") // 150x103 4:2:0: ~60 KB of coefficients
	cfg, err := jpegConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeJPEG(b, cfg, 16<<10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decode under a 16 KiB cap: %v, want ErrTooLarge", err)
	}
	cost := jpegCost(b, cfg, int64(cfg.Width), int64(cfg.Height))
	if _, _, err := decodeJPEG(b, cfg, cost.bytes); err != nil {
		t.Fatalf("decode under the estimate %d (%s): %v", cost.bytes, cost.layout, err)
	}
}
