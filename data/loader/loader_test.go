package loader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sot = 49406
	eot = 49407
)

// byteTokenize is a stand-in tokenizer: SOT, one id per byte, EOT, truncated to len(dst).
func byteTokenize(dst []int32, caption string) error {
	if caption == "" {
		return errors.New("empty caption")
	}
	n := min(len(caption), len(dst)-2)
	dst[0] = sot
	for i := range n {
		dst[1+i] = int32(caption[i])
	}
	dst[1+n] = eot
	return nil
}

// testImage draws a side×side picture that differs per index i (gradient plus a bar).
func testImage(i, side int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			c := color.RGBA{uint8(x * 255 / side), uint8(y * 255 / side), uint8(i * 37), 255}
			if x/4 == i%(side/4) {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// testRecords makes n records with 1–3 captions each and, when labelled, a label.
func testRecords(t testing.TB, n, side int, labelled bool) []shard.Record {
	t.Helper()
	recs := make([]shard.Record, n)
	for i := range recs {
		jpg, err := imageproc.EncodeJPEG(testImage(i, side), 90)
		if err != nil {
			t.Fatal(err)
		}
		caps := make([]string, 1+i%3)
		for j := range caps {
			caps[j] = fmt.Sprintf("image %d caption %d", i, j)
		}
		recs[i] = shard.Record{Key: fmt.Sprintf("k%05d", i), Caption: caps[0], Captions: caps, JPG: jpg,
			Width: int32(side), Height: int32(side)}
		if labelled {
			l := int32(i % 5)
			recs[i].Label = &l
		}
	}
	return recs
}

// writeShards splits recs over files shards with row groups of rg rows.
func writeShards(t testing.TB, recs []shard.Record, files, rg int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	per := (len(recs) + files - 1) / files
	for f := 0; f*per < len(recs); f++ {
		p := filepath.Join(dir, fmt.Sprintf("train-%05d.parquet", f))
		if _, err := shard.WriteFile(p, recs[f*per:min((f+1)*per, len(recs))], rg); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func baseConfig(files []string, mode Mode) Config {
	return Config{
		Files: files, Mode: mode, BatchSize: 8, ImageSize: 24, ContextLen: 32,
		Tokenize: byteTokenize, Seed: 7, DecodeWorkers: 2,
		Augment: imageproc.Augment{Flip: true, Jitter: imageproc.Jitter{Prob: 0.8, Brightness: 0.3, Saturation: 0.3}},
	}
}

// readAll reads one epoch to the end, copying every batch (and releasing it).
func readAll(t testing.TB, cfg Config, epoch int, start int64) ([]Batch, Stats) {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Epoch(context.Background(), epoch, start)
	defer e.Close()
	var out []Batch
	for {
		b, err := e.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.Images = slices.Clone(b.Images)
		c.Tokens = slices.Clone(b.Tokens)
		c.TextImage = slices.Clone(b.TextImage)
		c.Keys = slices.Clone(b.Keys)
		c.Labels = slices.Clone(b.Labels)
		c.pool = nil
		b.Release()
		out = append(out, c)
	}
	return out, e.Stats()
}

func TestShapesAndRanges(t *testing.T) {
	files := writeShards(t, testRecords(t, 45, 40, true), 2, 7)
	cfg := baseConfig(files, Train)
	batches, st := readAll(t, cfg, 0, 0)
	if len(batches) != 45/8 {
		t.Fatalf("%d batches, want %d (drop last)", len(batches), 45/8)
	}
	S, L, B := cfg.ImageSize, cfg.ContextLen, cfg.BatchSize
	// Normalised [0,1] pixels lie in [(0-mean)/std, (1-mean)/std] per channel.
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	seen := map[string]bool{}
	var last int64
	for _, b := range batches {
		if b.Size != B || len(b.Images) != B*3*S*S || len(b.Tokens) != B*L || len(b.Keys) != B || len(b.Labels) != B || b.Captions() != B {
			t.Fatalf("batch shapes: size %d images %d tokens %d keys %d labels %d", b.Size, len(b.Images), len(b.Tokens), len(b.Keys), len(b.Labels))
		}
		for c := range 3 {
			min := (0 - imageproc.CLIPMean[c]) / imageproc.CLIPStd[c]
			max := (1 - imageproc.CLIPMean[c]) / imageproc.CLIPStd[c]
			for i := range B {
				for _, v := range b.Images[(i*3+c)*S*S : (i*3+c+1)*S*S] {
					if !(v >= min-1e-4 && v <= max+1e-4) {
						t.Fatalf("channel %d value %v outside [%v, %v]", c, v, min, max)
					}
					lo, hi = float32(math.Min(float64(lo), float64(v))), float32(math.Max(float64(hi), float64(v)))
				}
			}
		}
		for i, k := range b.Keys {
			if seen[k] {
				t.Fatalf("key %s twice in one epoch", k)
			}
			seen[k] = true
			row := b.Tokens[i*L : (i+1)*L]
			if row[0] != sot || !slices.Contains(row, eot) || b.TextImage[i] != int32(i) {
				t.Fatalf("token row %d of %s: %v", i, k, row)
			}
			var n int
			fmt.Sscanf(k, "k%05d", &n)
			if b.Labels[i] != int32(n%5) {
				t.Fatalf("label of %s = %d, want %d", k, b.Labels[i], n%5)
			}
		}
		if b.Position <= last {
			t.Fatalf("positions not increasing: %d after %d", b.Position, last)
		}
		last = b.Position
	}
	if hi-lo < 2 {
		t.Errorf("images span only [%v, %v]: transform lost the contrast", lo, hi)
	}
	if len(st.Stages) != 7 || st.Stages[1].Stage != "decode" || st.Stages[1].Out != 45 {
		t.Errorf("stats %v", st.Stages)
	}
	if st.Stall <= 0 { // the first Next cannot find a batch ready
		t.Errorf("stall %v, want > 0", st.Stall)
	}
}

// digest summarises a run for determinism comparisons.
func digest(bs []Batch) string {
	h := fnv.New64a()
	for _, b := range bs {
		fmt.Fprint(h, b.Keys, b.Tokens, b.Labels, b.Position)
		for _, v := range b.Images {
			fmt.Fprint(h, math.Float32bits(v))
		}
	}
	return fmt.Sprintf("%x", h.Sum64())
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	files := writeShards(t, testRecords(t, 40, 32, false), 3, 5)
	cfg := baseConfig(files, Train)
	var want string
	for _, w := range []int{1, 2, 4} {
		cfg.DecodeWorkers, cfg.TokenizeWorkers, cfg.ReadWorkers = w, w, w
		bs, _ := readAll(t, cfg, 3, 0)
		got := digest(bs)
		if want == "" {
			want = got
		} else if got != want {
			t.Fatalf("workers=%d: digest %s, want %s as with 1 worker", w, got, want)
		}
	}
	other, _ := readAll(t, cfg, 4, 0)
	if digest(other) == want {
		t.Errorf("epochs 3 and 4 gave identical batches")
	}
	cfg.Seed++
	reseeded, _ := readAll(t, cfg, 3, 0)
	if digest(reseeded) == want {
		t.Errorf("seeds 7 and 8 gave identical batches")
	}
}

// TestCaptionChoice checks that training picks one of the record's captions, that the
// choice is a function of (seed, epoch, key), and that it varies across epochs.
func TestCaptionChoice(t *testing.T) {
	recs := testRecords(t, 40, 16, false)
	files := writeShards(t, recs, 1, 8)
	cfg := baseConfig(files, Train)
	cfg.BatchSize = 4
	chosen := func(epoch int) map[string]string {
		bs, _ := readAll(t, cfg, epoch, 0)
		m := map[string]string{}
		for _, b := range bs {
			for i, k := range b.Keys {
				var sb strings.Builder
				for _, id := range b.Tokens[i*cfg.ContextLen+1 : (i+1)*cfg.ContextLen] {
					if id == eot {
						break
					}
					sb.WriteByte(byte(id))
				}
				m[k] = sb.String()
			}
		}
		return m
	}
	e0, e0again, e1 := chosen(0), chosen(0), chosen(1)
	changed := 0
	for _, r := range recs {
		c, ok := e0[r.Key]
		if !ok {
			t.Fatalf("key %s missing", r.Key)
		}
		if !slices.Contains(r.Captions, c) {
			t.Fatalf("key %s: caption %q is none of %q", r.Key, c, r.Captions)
		}
		if e0again[r.Key] != c {
			t.Fatalf("key %s: epoch 0 chose %q then %q", r.Key, c, e0again[r.Key])
		}
		if e1[r.Key] != c {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("no caption changed between epochs 0 and 1")
	}
}

func TestDropLastVsKeepLast(t *testing.T) {
	files := writeShards(t, testRecords(t, 20, 16, false), 2, 3)
	for _, tc := range []struct {
		mode  Mode
		sizes []int
	}{{Train, []int{8, 8}}, {Eval, []int{8, 8, 4}}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			bs, _ := readAll(t, baseConfig(files, tc.mode), 0, 0)
			var sizes []int
			var keys []string
			for _, b := range bs {
				sizes = append(sizes, b.Size)
				keys = append(keys, b.Keys...)
				if len(b.Images) != b.Size*3*24*24 {
					t.Fatalf("images %d for size %d", len(b.Images), b.Size)
				}
			}
			if !slices.Equal(sizes, tc.sizes) {
				t.Fatalf("batch sizes %v, want %v", sizes, tc.sizes)
			}
			if tc.mode == Eval && (!slices.IsSorted(keys) || bs[2].Position != 20) {
				t.Errorf("eval order %v, last position %d; want file order ending at 20", keys, bs[2].Position)
			}
		})
	}
}

func TestEvalAllCaptions(t *testing.T) {
	recs := testRecords(t, 10, 16, false)
	files := writeShards(t, recs, 1, 4)
	cfg := baseConfig(files, Eval)
	cfg.AllCaptions = true
	cfg.BatchSize = 4
	bs, _ := readAll(t, cfg, 0, 0)
	var got, want []string
	for _, r := range recs {
		want = append(want, r.Captions...)
	}
	for _, b := range bs {
		if len(b.Tokens) != b.Captions()*cfg.ContextLen {
			t.Fatalf("tokens %d for %d captions", len(b.Tokens), b.Captions())
		}
		for row, img := range b.TextImage {
			toks := b.Tokens[row*cfg.ContextLen+1:]
			var sb strings.Builder
			for _, id := range toks[:slices.Index(toks, eot)] {
				sb.WriteByte(byte(id))
			}
			var n int
			fmt.Sscanf(b.Keys[img], "k%05d", &n)
			if !strings.HasPrefix(sb.String(), fmt.Sprintf("image %d ", n)) {
				t.Fatalf("caption %q mapped to image %s", sb.String(), b.Keys[img])
			}
			got = append(got, sb.String())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("captions %q, want %q", got, want)
	}
}

func TestResume(t *testing.T) {
	files := writeShards(t, testRecords(t, 50, 16, false), 2, 6)
	cfg := baseConfig(files, Train)
	full, _ := readAll(t, cfg, 2, 0)
	rest, _ := readAll(t, cfg, 2, full[1].Position)
	if digest(rest) != digest(full[2:]) {
		t.Fatalf("resuming at position %d did not reproduce batches 2..%d", full[1].Position, len(full)-1)
	}
}

// TestBadImage puts undecodable bytes in a shard: skipped and counted by default, an error
// naming the key, file and row group in strict mode.
func TestBadImage(t *testing.T) {
	recs := testRecords(t, 12, 16, false)
	recs[5].JPG = append([]byte{0xff, 0xd8, 0xff}, make([]byte, 40)...) // JPEG magic, garbage after
	recs[9].Captions, recs[9].Caption = nil, ""
	files := writeShards(t, recs, 1, 4)
	cfg := baseConfig(files, Eval)
	cfg.BatchSize = 5
	bs, st := readAll(t, cfg, 0, 0)
	var keys []string
	for _, b := range bs {
		keys = append(keys, b.Keys...)
	}
	if len(keys) != 10 || slices.Contains(keys, "k00005") || slices.Contains(keys, "k00009") {
		t.Fatalf("keys %v, want the 10 good ones", keys)
	}
	if st.Skipped["corrupt"] != 1 || st.Skipped["no_caption"] != 1 || st.Stages[1].Skipped != 2 {
		t.Errorf("skipped %v (decode stage %d), want corrupt 1, no_caption 1", st.Skipped, st.Stages[1].Skipped)
	}

	cfg.Strict = true
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Epoch(context.Background(), 0, 0)
	defer e.Close()
	for {
		_, err = e.Next()
		if err != nil {
			break
		}
	}
	for _, want := range []string{`key "k00005"`, files[0], "row group 1", "decode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("strict error %q does not name %s", err, want)
		}
	}
	if !errors.Is(err, imageproc.ErrCorrupt) {
		t.Errorf("strict error %v does not wrap imageproc.ErrCorrupt", err)
	}
}

func TestCancelAndClose(t *testing.T) {
	files := writeShards(t, testRecords(t, 64, 16, false), 2, 4)
	cfg := baseConfig(files, Train)
	cfg.BatchSize = 2
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e := l.Epoch(ctx, 0, 0)
			for range 3 {
				if _, err := e.Next(); err != nil {
					t.Fatal(err)
				}
			}
			if how == "close" {
				if err := e.Close(); err != nil {
					t.Fatalf("Close = %v", err)
				}
				if _, err := e.Next(); err != io.EOF {
					t.Fatalf("Next after Close = %v, want io.EOF", err)
				}
				return
			}
			cancel()
			for {
				_, err := e.Next()
				if err == nil {
					continue
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Next after cancel = %v, want context.Canceled", err)
				}
				break
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	good := baseConfig([]string{"x.parquet"}, Train)
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no files", func(c *Config) { c.Files = nil }},
		{"batch", func(c *Config) { c.BatchSize = 0 }},
		{"image size", func(c *Config) { c.ImageSize = -1 }},
		{"context", func(c *Config) { c.ContextLen = 0 }},
		{"tokenizer", func(c *Config) { c.Tokenize = nil }},
		{"mode", func(c *Config) { c.Mode = 9 }},
		{"rank", func(c *Config) { c.Rank, c.World = 2, 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if _, err := New(cfg); err == nil {
				t.Errorf("New accepted %+v", cfg)
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Errorf("New(good) = %v", err)
	}
}

// TestBatchReuse checks that a released batch's buffers serve a later batch.
func TestBatchReuse(t *testing.T) {
	files := writeShards(t, testRecords(t, 48, 16, false), 1, 8)
	cfg := baseConfig(files, Train)
	cfg.BatchSize = 4
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Epoch(context.Background(), 0, 0)
	defer e.Close()
	first, err := e.Next()
	if err != nil {
		t.Fatal(err)
	}
	p := &first.Images[0]
	first.Release()
	for {
		b, err := e.Next()
		if err == io.EOF {
			t.Fatal("released batch buffers never reused")
		}
		if err != nil {
			t.Fatal(err)
		}
		if &b.Images[0] == p {
			return
		}
		b.Release()
	}
}

// TestBadAugment checks that an invalid augmentation stops the epoch with imageproc's reason
// and the sample's key, instead of skipping every image.
func TestBadAugment(t *testing.T) {
	files := writeShards(t, testRecords(t, 8, 16, false), 1, 4)
	cfg := baseConfig(files, Train)
	cfg.Augment.Scale = [2]float64{0.9, 0.1}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Epoch(context.Background(), 0, 0)
	defer e.Close()
	_, err = e.Next()
	if err == nil || !strings.Contains(err.Error(), "scale") || !strings.Contains(err.Error(), "key") {
		t.Fatalf("Next = %v, want the augment's scale error with the key", err)
	}
	if _, again := e.Next(); again != err {
		t.Errorf("second Next = %v, want the same error", again)
	}
}
