package prepare_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/runlock"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/stages/prepare"
)

func TestPrepareSyntheticIsIndependentOfWorkers(t *testing.T) {
	digest := func(workers int) (prepare.Summary, map[string][32]byte) {
		cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
		cfg.Source, cfg.Workers = "synthetic", workers
		cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 150, 20
		sum := stagetest.Prepare(t, cfg)
		sums := map[string][32]byte{}
		for name, sp := range sum.Splits {
			for _, sh := range sp.Shards {
				b, err := os.ReadFile(filepath.Join(cfg.Out, sh.Path))
				if err != nil {
					t.Fatal(err)
				}
				sums[name+"/"+sh.Path] = sha256.Sum256(b)
			}
		}
		return sum, sums
	}
	sum1, files1 := digest(1)
	_, files3 := digest(3)
	if sum1.Images() != 170 {
		t.Fatalf("wrote %d images, want 150 + 20", sum1.Images())
	}
	if got := sum1.Splits["zeroshot"].Images; got != 20 {
		t.Errorf("zeroshot split has %d images, want 20", got)
	}
	if tr, va := sum1.Splits["train"].Images, sum1.Splits["val"].Images; tr+va != 150 || va < 10 || va > 50 {
		t.Errorf("train/val = %d/%d, want 150 split near 80/20", tr, va)
	}
	if len(files1) < 4 {
		t.Errorf("expected rotation into several shards at 64 rows, got %d files", len(files1))
	}
	if len(files1) != len(files3) {
		t.Fatalf("1 worker wrote %d shards, 3 workers %d", len(files1), len(files3))
	}
	for name, d := range files1 {
		if files3[name] != d {
			t.Errorf("shard %s differs between 1 and 3 workers", name)
		}
	}
}

func TestPrepareRefusesAnExistingDataset(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N = "synthetic", 5
	stagetest.Prepare(t, cfg)
	_, err := prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already holds a dataset") {
		t.Fatalf("second prepare into the same directory: err = %v", err)
	}
}

func TestPrepareRefusesADirectoryAnotherWriterHolds(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N = "synthetic", 5
	held, err := runlock.Acquire(cfg.Out, "prepare")
	stagetest.Must(t, err)
	_, err = prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard)
	if !errors.Is(err, runlock.ErrHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("prepare into a locked directory: err = %v, want runlock.ErrHeld naming pid %d", err, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, runlock.FileName)); err != nil {
		t.Fatalf("the refused prepare touched the holder's lock file: %v", err)
	}
	stagetest.Must(t, held.Release())
	stagetest.Prepare(t, cfg) // free again
	if _, err := os.Stat(filepath.Join(cfg.Out, runlock.FileName)); err == nil {
		t.Error("prepare left its lock file behind")
	}
}

func TestPrepareTakesOverTheLockOfADeadProcess(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N = "synthetic", 5
	stagetest.Must(t, os.MkdirAll(cfg.Out, 0o755))
	// What kill -9 leaves: the record, no flock.
	stale := `{"pid":999999,"host":"elsewhere","what":"prepare","command":"clipgo prepare","since":"2026-01-02T03:04:05Z"}` + "\n"
	stagetest.Must(t, os.WriteFile(filepath.Join(cfg.Out, runlock.FileName), []byte(stale), 0o644))
	var logs bytes.Buffer
	_, err := prepare.Run(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard)
	stagetest.Must(t, err)
	if !strings.Contains(logs.String(), "took over the lock of pid 999999") {
		t.Errorf("no warning about the dead holder; logs:\n%s", logs.String())
	}
}

func TestPrepareRefusesANamedPipeAsCaptions(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "captions.tsv")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cfg := stagetest.PrepareConfig(filepath.Join(dir, "ds"))
	cfg.Source, cfg.Captions.File, cfg.Captions.Images = "captions", fifo, dir
	done := make(chan error, 1)
	go func() { _, err := prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, fileinput.ErrNotRegular) || !strings.Contains(err.Error(), fifo) {
			t.Fatalf("err = %v, want one naming %s as not a regular file", err, fifo)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("prepare blocked on a named pipe")
	}
	if _, err := os.Stat(cfg.Out); err == nil {
		t.Errorf("the refused prepare left %s behind", cfg.Out)
	}
}

func TestPrepareConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*prepare.Config)
		want string
	}{
		{"no source", func(c *prepare.Config) { c.Source = "" }, "--source is required"},
		{"unknown source", func(c *prepare.Config) { c.Source = "web" }, `unknown --source "web"`},
		{"no out", func(c *prepare.Config) { c.Out = "" }, "--out is required"},
		{"bad mode", func(c *prepare.Config) { c.ResizeMode = "stretch" }, "--resize-mode"},
		{"bad size", func(c *prepare.Config) { c.ImageSize = 2 }, "--image-size"},
		{"bad fraction", func(c *prepare.Config) { c.ValFraction = 1 }, "--val-fraction"},
		{"NaN fraction", func(c *prepare.Config) { c.ValFraction = math.NaN() }, "--val-fraction NaN is outside [0, 1)"},
		{"negative fraction", func(c *prepare.Config) { c.ValFraction = -0.1 }, "--val-fraction"},
		{"captions without file", func(c *prepare.Config) { c.Source = "captions" }, "--captions is required"},
		{"idx without files", func(c *prepare.Config) { c.Source = "idx" }, "--idx-images is required"},
		{"parquet without match", func(c *prepare.Config) { c.Source, c.Input = "parquet", "/nonexistent/*.parquet" }, "matches no file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
			cfg.Source = "synthetic"
			tc.edit(&cfg)
			_, err := prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// badInputs writes a folder of images, good and bad, and a Flickr-style captions file naming
// them; it returns the captions file, the images root and the reject reasons expected.
func badInputs(t *testing.T) (captions, images string, want map[string]int64, good int) {
	t.Helper()
	root := t.TempDir()
	images = filepath.Join(root, "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(images, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rgb := image.NewRGBA(image.Rect(0, 0, 48, 40))
	gray := image.NewGray16(image.Rect(0, 0, 40, 48))
	alpha := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	pal := image.NewPaletted(image.Rect(0, 0, 40, 40), color.Palette{color.Black, color.White})
	cmyk := image.NewCMYK(image.Rect(0, 0, 40, 40))
	for i := range rgb.Pix {
		rgb.Pix[i] = byte(i)
	}
	var j, p16, pa, pp, cm bytes.Buffer
	stagetest.Must(t, jpeg.Encode(&j, rgb, nil))
	stagetest.Must(t, png.Encode(&p16, gray))
	stagetest.Must(t, png.Encode(&pa, alpha))
	stagetest.Must(t, png.Encode(&pp, pal))
	stagetest.Must(t, jpeg.Encode(&cm, cmyk, nil))
	write("good.jpg", j.Bytes())
	write("gray16.png", p16.Bytes())
	write("alpha.png", pa.Bytes())
	write("paletted.png", pp.Bytes())
	write("cmyk.jpg", cm.Bytes())
	write("truncated.jpg", j.Bytes()[:j.Len()/3])
	write("zero.jpg", nil)
	write("notanimage.jpg", []byte("plain text pretending to be an image"))
	write("huge.png", hugePNG(t, 100_000, 100_000))
	write("twin.jpg", j.Bytes())

	lines := []string{
		"good.jpg#0\ta red thing on a table",
		"good.jpg#1\tanother caption of the same image",
		"gray16.png#0\ta 16-bit grey image",
		"alpha.png#0\ta transparent image",
		"paletted.png#0\ta paletted image",
		"cmyk.jpg#0\ta cmyk jpeg",
		"truncated.jpg#0\ta truncated jpeg",
		"zero.jpg#0\tan empty file",
		"notanimage.jpg#0\tnot an image at all",
		"huge.png#0\ta header that declares ten gigapixels",
		"missing.jpg#0\ta file that is not there",
		"../escape.jpg#0\ta path out of the root",
		"twin.jpg#0\t   ",
		"twin.jpg#1\tthe twin keeps this caption",
	}
	captions = filepath.Join(root, "captions.tsv")
	stagetest.Must(t, os.WriteFile(captions, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	want = map[string]int64{
		"image_corrupt":   2, // truncated, notanimage (its bytes match no format: corrupt or unsupported)
		"image_empty":     1,
		"image_too_large": 1,
		"missing_file":    1,
		"path_escape":     1,
		"empty_caption":   1,
	}
	return captions, images, want, 6 // good, gray16, alpha, paletted, cmyk, twin
}

// hugePNG returns a valid PNG whose header declares w×h pixels (its data is one pixel's worth).
func hugePNG(t *testing.T, w, h uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	stagetest.Must(t, png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))))
	out := b.Bytes()
	// IHDR data starts at byte 16: width, height; its CRC covers "IHDR" + 13 data bytes.
	binary.BigEndian.PutUint32(out[16:], w)
	binary.BigEndian.PutUint32(out[20:], h)
	binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
	return out
}

func TestPrepareSkipsBadRecordsAndCountsThem(t *testing.T) {
	captions, images, want, good := badInputs(t)
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Captions.File, cfg.Captions.Images, cfg.ValFraction = "captions", captions, images, 0
	sum := stagetest.Prepare(t, cfg)
	if sum.Images() != int64(good) {
		t.Errorf("wrote %d images, want %d", sum.Images(), good)
	}
	// "notanimage" may be judged corrupt or unsupported: fold the two for the comparison.
	got := map[string]int64{}
	for r, n := range sum.Rejects {
		if r == "image_unsupported" {
			r = "image_corrupt"
		}
		got[r] += n
	}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("rejects[%s] = %d, want %d (all: %v)", r, got[r], n, sum.Rejects)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reject reasons = %v, want exactly %v", got, want)
	}
	// rejects.jsonl lists each with its origin.
	f, err := os.Open(filepath.Join(cfg.Out, prepare.RejectsName))
	stagetest.Must(t, err)
	defer f.Close()
	var lines int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Origin, Reason string }
		stagetest.Must(t, json.Unmarshal(sc.Bytes(), &r))
		if r.Origin == "" || r.Reason == "" {
			t.Errorf("reject line without origin or reason: %s", sc.Text())
		}
		lines++
	}
	var total int64
	for _, n := range sum.Rejects {
		total += n
	}
	if lines != total {
		t.Errorf("rejects.jsonl has %d lines, counts say %d", lines, total)
	}
	// The survivors are RGB JPEGs of the requested size, captions grouped by image.
	recs := stagetest.ReadAll(t, cfg.Out, "train")
	byKey := map[string]shard.Record{}
	for _, r := range recs {
		byKey[r.Key] = r
		img, err := jpeg.Decode(bytes.NewReader(r.JPG))
		if err != nil {
			t.Errorf("%s: stored image does not decode: %v", r.Key, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 32 || r.Width != 32 || r.Height != 32 {
			t.Errorf("%s: stored %v (record %dx%d), want 32x32", r.Key, b, r.Width, r.Height)
		}
		if sum := sha256.Sum256(r.JPG); r.SHA256 != hexString(sum[:]) {
			t.Errorf("%s: sha256 column does not match the image bytes", r.Key)
		}
	}
	if g := byKey["good"]; len(g.Captions) != 2 || g.Caption != "a red thing on a table" || g.OriginalWidth != 48 || g.OriginalHeight != 40 {
		t.Errorf("good: captions %q, original %dx%d; want 2 captions, 48x40", g.Captions, g.OriginalWidth, g.OriginalHeight)
	}
	if tw := byKey["twin"]; len(tw.Captions) != 1 || tw.Caption != "the twin keeps this caption" {
		t.Errorf("twin: captions %q, want only the non-empty one", tw.Captions)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func TestPrepareStrictStopsAtTheFirstBadRecordNamingIt(t *testing.T) {
	captions, images, _, _ := badInputs(t)
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Captions.File, cfg.Captions.Images, cfg.Strict = "captions", captions, images, true
	_, err := prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard)
	if !errors.Is(err, prepare.ErrStrict) {
		t.Fatalf("err = %v, want prepare.ErrStrict", err)
	}
	if !strings.Contains(err.Error(), "captions.tsv:") {
		t.Errorf("strict error %q does not name the file and line", err)
	}
	if _, statErr := os.Stat(filepath.Join(cfg.Out, shard.ManifestName)); statErr == nil {
		t.Error("a failed strict run left a manifest behind")
	}
}

func TestPrepareDropsDuplicateKeys(t *testing.T) {
	root := t.TempDir()
	cls := filepath.Join(root, "cats")
	stagetest.Must(t, os.MkdirAll(cls, 0o755))
	var j, p bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 40, 40))
	stagetest.Must(t, jpeg.Encode(&j, img, nil))
	stagetest.Must(t, png.Encode(&p, img))
	stagetest.Must(t, os.WriteFile(filepath.Join(cls, "tom.jpg"), j.Bytes(), 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(cls, "tom.png"), p.Bytes(), 0o644)) // same key "cats/tom"
	stagetest.Must(t, os.WriteFile(filepath.Join(cls, "kit.png"), p.Bytes(), 0o644))
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Root, cfg.ValFraction = "imagefolder", root, 0
	sum := stagetest.Prepare(t, cfg)
	if sum.Images() != 2 || sum.Rejects[prepare.ReasonDuplicateKey] != 1 {
		t.Fatalf("wrote %d images with rejects %v; want 2 and one duplicate_key", sum.Images(), sum.Rejects)
	}
	m, err := shard.ReadManifest(cfg.Out)
	stagetest.Must(t, err)
	if len(m.ClassNames) != 1 || m.ClassNames[0] != "cats" {
		t.Errorf("class names = %v, want [cats]", m.ClassNames)
	}
	for _, r := range stagetest.ReadAll(t, cfg.Out, "train") {
		if r.Label == nil || *r.Label != 0 {
			t.Errorf("%s: label %v, want 0", r.Key, r.Label)
		}
	}
}

func TestPrepareIDX(t *testing.T) {
	dir := t.TempDir()
	const n, side = 12, 28
	imgs := []byte{0, 0, 0x08, 3, 0, 0, 0, n, 0, 0, 0, side, 0, 0, 0, side}
	lbls := []byte{0, 0, 0x08, 1, 0, 0, 0, n}
	for i := 0; i < n; i++ {
		for p := 0; p < side*side; p++ {
			imgs = append(imgs, byte(i*20+p))
		}
		lbls = append(lbls, byte(i%10))
	}
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "images-idx3-ubyte"), imgs, 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "labels-idx1-ubyte"), lbls, 0o644))
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.ValFraction = "idx", 0
	cfg.IDXImages, cfg.IDXLabels = filepath.Join(dir, "images-idx3-ubyte"), filepath.Join(dir, "labels-idx1-ubyte")
	sum := stagetest.Prepare(t, cfg)
	if sum.Images() != n {
		t.Fatalf("wrote %d images, want %d", sum.Images(), n)
	}
	for i, r := range stagetest.ReadAll(t, cfg.Out, "train") {
		if r.Label == nil || int(*r.Label) != i%10 || r.OriginalWidth != side {
			t.Errorf("row %d (%s): label %v original width %d; want %d and %d", i, r.Key, r.Label, r.OriginalWidth, i%10, side)
		}
	}
}

func TestPrepareReshardsParquet(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N, cfg.ValFraction = "synthetic", 40, 0
	stagetest.Prepare(t, cfg)
	want := stagetest.ReadAll(t, cfg.Out, "train")

	again := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "again"))
	again.Source, again.Input, again.ValFraction = "parquet", filepath.Join(cfg.Out, "train", "*.parquet"), 0
	sum := stagetest.Prepare(t, again)
	got := stagetest.ReadAll(t, again.Out, "train")
	if sum.Images() != int64(len(want)) || len(got) != len(want) {
		t.Fatalf("re-sharded %d (read back %d) images, want %d", sum.Images(), len(got), len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || strings.Join(got[i].Captions, "|") != strings.Join(want[i].Captions, "|") {
			t.Fatalf("row %d: %s %q, want %s %q", i, got[i].Key, got[i].Captions, want[i].Key, want[i].Captions)
		}
	}
}

func TestPrepareParquetRejectsABrokenFileAndKeepsTheRest(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N, cfg.ValFraction = "synthetic", 30, 0
	stagetest.Prepare(t, cfg)
	in := t.TempDir()
	src, err := os.ReadFile(filepath.Join(cfg.Out, "train", "train-00000.parquet"))
	stagetest.Must(t, err)
	stagetest.Must(t, os.WriteFile(filepath.Join(in, "a.parquet"), src, 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(in, "b.parquet"), src[:len(src)/2], 0o644))

	again := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "again"))
	again.Source, again.Input, again.ValFraction = "parquet", filepath.Join(in, "*.parquet"), 0
	sum := stagetest.Prepare(t, again)
	if sum.Images() != 30 || sum.Rejects["bad_file"] != 1 {
		t.Fatalf("wrote %d images, rejects %v; want 30 and one bad_file", sum.Images(), sum.Rejects)
	}
}

func TestKeyFractionIsUniformOverSimilarKeys(t *testing.T) {
	const n = 20000
	var buckets [10]int
	for i := 0; i < n; i++ {
		buckets[int(prepare.KeyFraction(0, fmt.Sprintf("synth-%08d", i))*10)]++
	}
	for b, c := range buckets {
		if c < n/10*9/10 || c > n/10*11/10 {
			t.Errorf("bucket %d holds %d of %d keys, want about %d", b, c, n, n/10)
		}
	}
}

func TestPrepareValCountIsExact(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N, cfg.Synthetic.ZeroShotN, cfg.ValCount = "synthetic", 100, 10, 17
	sum := stagetest.Prepare(t, cfg)
	if sum.Splits["val"].Images != 17 || sum.Splits["train"].Images != 83 || sum.Splits["zeroshot"].Images != 10 {
		t.Fatalf("splits train %d val %d zeroshot %d; want 83, 17, 10", sum.Splits["train"].Images, sum.Splits["val"].Images, sum.Splits["zeroshot"].Images)
	}
	cfg = stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Synthetic.N, cfg.ValCount = "synthetic", 10, 10
	if _, err := prepare.Run(context.Background(), cfg, stagetest.Quiet, io.Discard); err == nil || !strings.Contains(err.Error(), "only 10 images") {
		t.Fatalf("val-count of every image: err = %v", err)
	}
}

// TestPrepareKeepsJPEGsItDoesNotResize: with no resizing (resize mode "no", or a keep_ratio
// image no bigger than the size with only_if_bigger) a JPEG file's bytes reach the shard
// unchanged; a PNG, or a JPEG that is resized, is encoded.
func TestPrepareKeepsJPEGsItDoesNotResize(t *testing.T) {
	root := t.TempDir()
	cls := filepath.Join(root, "cats")
	stagetest.Must(t, os.MkdirAll(cls, 0o755))
	img := image.NewRGBA(image.Rect(0, 0, 48, 40))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var j, p bytes.Buffer
	stagetest.Must(t, jpeg.Encode(&j, img, &jpeg.Options{Quality: 80}))
	stagetest.Must(t, png.Encode(&p, img))
	stagetest.Must(t, os.WriteFile(filepath.Join(cls, "tom.jpg"), j.Bytes(), 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(cls, "kit.png"), p.Bytes(), 0o644))
	for _, tc := range []struct {
		mode    string
		keepJPG bool
	}{{"no", true}, {"center_crop", false}} {
		cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
		cfg.Source, cfg.Root, cfg.ValFraction, cfg.ResizeMode = "imagefolder", root, 0, tc.mode
		stagetest.Prepare(t, cfg)
		for _, r := range stagetest.ReadAll(t, cfg.Out, "train") {
			kept := bytes.Equal(r.JPG, j.Bytes())
			if want := tc.keepJPG && r.Key == "cats/tom"; kept != want {
				t.Errorf("resize mode %s, %s: stored as the file %v, want %v", tc.mode, r.Key, kept, want)
			}
			if sum := sha256.Sum256(r.JPG); r.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: sha256 is not of the stored bytes", r.Key)
			}
		}
	}
}
