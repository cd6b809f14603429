package filter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// testModel is a randomly initialised model small enough to run in a test.
func testModel(t *testing.T) string {
	t.Helper()
	return stagetest.Checkpoint(t, fusion.Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 32, PatchSize: 16, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 16, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4}}, 3)
}

// synthetic prepares n synthetic scenes (train and val) and returns the directory.
func synthetic(t *testing.T, n int) string {
	t.Helper()
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "synthetic"))
	cfg.Source, cfg.Synthetic.N = "synthetic", n
	stagetest.Prepare(t, cfg)
	return cfg.Out
}

// dataset writes records as the split of a new prepared dataset.
func dataset(t *testing.T, split string, recs []shard.Record) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	w, err := shard.NewWriter(dir, split, shard.WriterOptions{RowGroupRows: 8, ShardRows: 20})
	stagetest.Must(t, err)
	for _, r := range recs {
		stagetest.Must(t, w.Write(r))
	}
	shards, err := w.Close()
	stagetest.Must(t, err)
	stagetest.Must(t, shard.WriteManifest(dir, &shard.Manifest{SchemaVersion: shard.SchemaVersion, Source: "test", ImageSize: 32,
		ResizeMode: "center_crop", Splits: map[string]*shard.Split{split: shard.NewSplit(shards)}}))
	return dir
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	stagetest.Must(t, err)
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		stagetest.Must(t, json.Unmarshal(sc.Bytes(), &v))
		out = append(out, v)
	}
	stagetest.Must(t, sc.Err())
	return out
}

func readSummary(t *testing.T, dir string) Summary {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, SummaryName))
	stagetest.Must(t, err)
	var s Summary
	stagetest.Must(t, json.Unmarshal(raw, &s))
	return s
}

// checkBalance requires every pair and image in to be kept or dropped for one reason.
func checkBalance(t *testing.T, s Summary) {
	t.Helper()
	pairs, images := s.PairsKept, s.ImagesKept
	for _, n := range s.PairsBy {
		pairs += n
	}
	for _, n := range s.ImagesBy {
		images += n
	}
	if pairs != s.PairsIn || images != s.ImagesIn {
		t.Errorf("pairs %d kept + dropped %v != %d in; images %d + %v != %d", s.PairsKept, s.PairsBy, s.PairsIn, s.ImagesKept, s.ImagesBy, s.ImagesIn)
	}
}

// TestTopFraction keeps the best-scored half of the pairs: every kept pair scores at least
// the threshold, every dropped one below it, the other split is copied whole, and the new
// dataset reads back with the kept captions.
func TestTopFraction(t *testing.T) {
	data := synthetic(t, 24)
	out := filepath.Join(t.TempDir(), "filtered")
	sum, err := Run(context.Background(), Options{Checkpoint: testModel(t), Data: data, Out: out, TopFraction: 0.5, Log: stagetest.Quiet})
	stagetest.Must(t, err)
	checkBalance(t, sum)
	if sum.Threshold == nil || sum.PairsKept < sum.PairsIn/2 || sum.PairsKept > sum.PairsIn/2+3 {
		t.Fatalf("top half of %d pairs: kept %d, threshold %v", sum.PairsIn, sum.PairsKept, sum.Threshold)
	}
	th := *sum.Threshold
	captions := map[string][]string{}
	for _, r := range stagetest.ReadAll(t, data, "train") {
		captions[r.Key] = r.Captions
	}
	score := map[string]float64{}
	for _, s := range readJSONL[Score](t, filepath.Join(out, ScoresName)) {
		score[fmt.Sprint(s.Key, "/", s.Caption)] = s.Score
		if c := captions[s.Key]; s.Caption >= len(c) || c[s.Caption] != s.Text {
			t.Errorf("score line %+v: not a caption of %s (%q)", s, s.Key, c)
		}
	}
	if len(score) != sum.PairsIn {
		t.Errorf("%d scores for %d pairs", len(score), sum.PairsIn)
	}
	kept := 0
	for _, r := range stagetest.ReadAll(t, out, "train") {
		for _, c := range r.Captions {
			i := indexOf(captions[r.Key], c)
			if i < 0 {
				t.Fatalf("%s: caption %q was not in the input", r.Key, c)
			}
			if s := score[fmt.Sprint(r.Key, "/", i)]; s < th {
				t.Errorf("%s caption %d kept with score %v below the threshold %v", r.Key, i, s, th)
			}
			kept++
		}
		if r.Caption != r.Captions[0] {
			t.Errorf("%s: caption %q is not the first kept %q", r.Key, r.Caption, r.Captions[0])
		}
	}
	if kept != sum.PairsKept {
		t.Errorf("%d pairs in the new shards, summary says %d", kept, sum.PairsKept)
	}
	for _, d := range readJSONL[Drop](t, filepath.Join(out, DroppedName)) {
		if d.Caption >= 0 && (d.Reason != ReasonScore || d.Score == nil || *d.Score >= th) {
			t.Errorf("drop %+v: want a clip_score drop below %v", d, th)
		}
	}
	if got, want := len(stagetest.ReadAll(t, out, "val")), len(stagetest.ReadAll(t, data, "val")); got != want {
		t.Errorf("val split: %d records, the input's has %d", got, want)
	}
	if _, err := os.Stat(filepath.Join(out, HistogramName)); err != nil {
		t.Errorf("no histogram: %v", err)
	}
	m, err := shard.ReadManifest(out)
	stagetest.Must(t, err)
	if f, ok := m.Extra["filter"].(map[string]any); !ok || f["pairs_kept"] != float64(sum.PairsKept) {
		t.Errorf("manifest extra %v", m.Extra)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestBasicDedupAndEvalSets drops short captions, small and elongated images, the copies of
// an image (keeping one), and the training images that are copies of evaluation images.
func TestBasicDedupAndEvalSets(t *testing.T) {
	base := stagetest.ReadAll(t, synthetic(t, 16), "train")
	var recs []shard.Record
	for i, r := range base[:8] {
		r.OriginalWidth, r.OriginalHeight = 400, 300
		r.Captions = []string{r.Captions[0], "a cat", "tiny.", "a red circle above a blue square"}
		r.Caption = r.Captions[0]
		switch i {
		case 3: // too small
			r.OriginalWidth, r.OriginalHeight = 150, 300
		case 4: // aspect ratio 3.3
			r.OriginalWidth, r.OriginalHeight = 1000, 300
		}
		recs = append(recs, r)
		if i == 0 {
			for k := range 2 { // two copies of image 0 under other keys
				c := r
				c.Key = fmt.Sprintf("%s-copy%d", r.Key, k)
				recs = append(recs, c)
			}
		}
	}
	data := dataset(t, "train", recs)
	eval := dataset(t, "test", []shard.Record{base[6], base[9]}) // base[6] is in training too
	out := filepath.Join(t.TempDir(), "filtered")
	// An untrained model puts every image close to every other: only copies reach 0.99999.
	sum, err := Run(context.Background(), Options{Checkpoint: testModel(t), Data: data, Out: out, Basic: DataCompBasic,
		Dedup: 0.99999, Against: []string{eval}, AgainstThreshold: 0.99999, Log: stagetest.Quiet})
	stagetest.Must(t, err)
	checkBalance(t, sum)
	want := map[string]int{ReasonImageSize: 1, ReasonAspectRatio: 1, ReasonDuplicate: 2, ReasonEvalDuplicate: 1}
	for r, n := range want {
		if sum.ImagesBy[r] != n {
			t.Errorf("%s: %d images dropped, want %d (all: %v)", r, sum.ImagesBy[r], n, sum.ImagesBy)
		}
	}
	if sum.PairsBy[ReasonCaptionWords] != 2*len(recs)-2*2 || sum.PairsBy[ReasonCaptionChars] != 0 {
		// "a cat" and "tiny." (1–2 words) of every image whose image is not dropped by the
		// basic filter itself (which is decided first): 11 images less the 2 dropped for size.
		t.Errorf("caption drops %v", sum.PairsBy)
	}
	if len(sum.EvalMatches) != 1 || sum.EvalMatches[0].Key != base[6].Key || !strings.HasSuffix(sum.EvalMatches[0].Match, ":test:"+base[6].Key) {
		t.Errorf("eval duplicates %+v, want %s matching the test image", sum.EvalMatches, base[6].Key)
	}
	keys := map[string]bool{}
	for _, r := range stagetest.ReadAll(t, out, "train") {
		keys[r.Key] = true
		if len(r.Captions) != 2 {
			t.Errorf("%s kept captions %q, want the two long ones", r.Key, r.Captions)
		}
	}
	copies := 0
	for _, k := range []string{base[0].Key, base[0].Key + "-copy0", base[0].Key + "-copy1"} {
		if keys[k] {
			copies++
		}
	}
	if copies != 1 || len(keys) != sum.ImagesKept || keys[base[6].Key] || keys[base[3].Key] {
		t.Errorf("kept %v: want one of image 0's three copies, not image 6 (in the test set) nor 3 (small)", keys)
	}
}

func TestOptionErrors(t *testing.T) {
	data := synthetic(t, 4)
	ckpt := testModel(t)
	exists := t.TempDir()
	half := 0.5
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"out exists", Options{Out: exists}, "exists"},
		{"out is data", Options{Out: data}, "new directory"},
		{"two score cuts", Options{MinScore: &half, TopFraction: 0.3}, "both"},
		{"fraction above 1", Options{TopFraction: 1.5}, "top-fraction"},
		{"dedup above 1", Options{Dedup: 2}, "dedup"},
		{"aspect below 1", Options{Basic: Basic{MaxAspect: 0.5}}, "aspect"},
		{"no such split", Options{Split: "nope"}, "nope"},
		{"no such eval set", Options{Against: []string{filepath.Join(exists, "none")}}, "against"},
	} {
		o := tc.opts
		o.Checkpoint, o.Data, o.Log = ckpt, data, stagetest.Quiet
		if o.Out == "" {
			o.Out = filepath.Join(t.TempDir(), "out")
		}
		_, err := Run(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
