package tests

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/stages/prepare"
)

// TestPrepareFlickr8k prepares the real Flickr8k training images (research use only: read
// from ../shared, written to a temporary directory, never kept) and checks that every image and
// caption arrives, with the several captions of each image grouped under its key.
func TestPrepareFlickr8k(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: decodes 6,000 images")
	}
	captions := testenv.SharedFile(t, "data/flickr8k/captions.tsv")
	images := testenv.SharedFile(t, "data/flickr8k/images")
	cfg := prepare.Config{Source: "captions", Out: filepath.Join(t.TempDir(), "f8k"), ImageSize: 64,
		ResizeMode: "center_crop", Quality: 90, Workers: 2, ValCount: 500, RowGroupRows: 256, ShardRows: 2000}
	cfg.Captions.File, cfg.Captions.Images = captions, images
	sum, err := prepare.Run(context.Background(), cfg, quiet, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var imgs, caps int64
	for _, sp := range sum.Splits {
		imgs, caps = imgs+sp.Images, caps+sp.Captions
	}
	if imgs != 6000 || caps != 30000 || len(sum.Rejects) != 0 {
		t.Fatalf("Flickr8k: %d images, %d captions, rejects %v; want 6000, 30000, none", imgs, caps, sum.Rejects)
	}
	if v := sum.Splits["val"].Images; v != 500 {
		t.Errorf("val split holds %d images, want exactly 500 (--val-count)", v)
	}
	t.Logf("Flickr8k prepared in %s: train %d, val %d images", sum.Elapsed, sum.Splits["train"].Images, sum.Splits["val"].Images)
}
