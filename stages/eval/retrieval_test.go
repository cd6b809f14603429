package eval

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/jpeg"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

func TestRetrievalOnSyntheticScenes(t *testing.T) {
	ckpt, data := evalCheckpoint(t), evalDataset(t, 40, 4)
	val := stagetest.ReadAll(t, data, "val")
	captionsOf := map[string][]string{}
	nt := 0
	for _, r := range val {
		captionsOf[r.Key] = r.AllCaptions()
		nt += len(r.AllCaptions())
	}
	if len(val) < 10 || nt == len(val) {
		t.Fatalf("fixture: %d val images with %d captions; want ≥ 10 images with several captions each", len(val), nt)
	}
	out := filepath.Join(t.TempDir(), "eval", "retrieval.json")
	var report bytes.Buffer
	const examples = 3
	res, err := Retrieval(context.Background(), RetrievalOptions{Checkpoint: ckpt, Data: data, Out: out, Batch: 7, Examples: examples, Report: &report, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	got, det, err := evalfile.Read(out)
	if err != nil || det == nil {
		t.Fatalf("evalfile.Read: %v, details %v", err, det)
	}
	if got.Task != evalfile.TaskRetrieval || got.Dataset != "synthetic:val" || got.Pretrained != ckpt {
		t.Errorf("result header %+v", got)
	}
	want := []string{"image_retrieval_mean_rank", "image_retrieval_median_rank",
		"image_retrieval_recall@1", "image_retrieval_recall@10", "image_retrieval_recall@5",
		"text_retrieval_mean_rank", "text_retrieval_median_rank",
		"text_retrieval_recall@1", "text_retrieval_recall@10", "text_retrieval_recall@5"}
	if keys := slices.Sorted(maps.Keys(got.Metrics)); !slices.Equal(keys, want) {
		t.Fatalf("metrics %v, want %v", keys, want)
	}
	for _, dir := range []string{"image", "text"} {
		r1, r5, r10 := got.Metrics[dir+"_retrieval_recall@1"], got.Metrics[dir+"_retrieval_recall@5"], got.Metrics[dir+"_retrieval_recall@10"]
		if !(0 <= r1 && r1 <= r5 && r5 <= r10 && r10 <= 1) {
			t.Errorf("%s recalls @1,5,10 = %v, %v, %v: not rising shares", dir, r1, r5, r10)
		}
		mean, median := got.Metrics[dir+"_retrieval_mean_rank"], got.Metrics[dir+"_retrieval_median_rank"]
		limit := float64(len(val)) // text→image ranks images
		if dir == "text" {
			limit = float64(nt)
		}
		if !(mean >= 1 && mean <= limit && median >= 1 && median <= limit) {
			t.Errorf("%s ranks: mean %v, median %v outside [1,%v]", dir, mean, median, limit)
		}
	}
	if res.Metrics["text_retrieval_recall@1"] != got.Metrics["text_retrieval_recall@1"] {
		t.Error("returned and written results differ")
	}
	// The spread queries, then the worst failures (a random model has some each way).
	spreadN := slices.IndexFunc(det.Examples, func(e evalfile.Example) bool { return e.Kind == evalfile.KindWorst })
	if det.Images != len(val) || det.Texts != nt || spreadN != 2*examples || len(det.Examples) != 4*examples {
		t.Fatalf("details: %d images, %d texts, %d examples (%d spread); want %d, %d, %d (%d)", det.Images, det.Texts,
			len(det.Examples), spreadN, len(val), nt, 4*examples, 2*examples)
	}
	for i, ex := range det.Examples[spreadN:] {
		if ex.Kind != evalfile.KindWorst || ex.Rank < 2 {
			t.Fatalf("worst example %d: kind %q rank %d", i, ex.Kind, ex.Rank)
		}
		if prev := det.Examples[spreadN+i-1]; i > 0 && prev.Direction == ex.Direction && prev.Rank < ex.Rank {
			t.Errorf("worst %s failures not worst first: rank %d then %d", ex.Direction, prev.Rank, ex.Rank)
		}
		for _, h := range ex.Results[:min(len(ex.Results), ex.Rank-1)] {
			if h.Correct {
				t.Errorf("%q: a right answer above its first right answer's rank %d", ex.Query, ex.Rank)
			}
		}
		switch ex.Direction {
		case "text_to_image":
			checkJPEGURI(t, ex.Answer)
			if !slices.Contains(captionsOf[ex.AnswerKey], ex.Query) {
				t.Errorf("%q: answer %s is not its image", ex.Query, ex.AnswerKey)
			}
		case "image_to_text":
			if !slices.Contains(captionsOf[ex.Query], ex.AnswerText) {
				t.Errorf("%s: answer %q is not its caption", ex.Query, ex.AnswerText)
			}
		}
	}
	for _, ex := range det.Examples {
		if len(ex.Results) != 5 {
			t.Errorf("%s %q: %d results, want 5", ex.Direction, ex.Query, len(ex.Results))
		}
		for i, h := range ex.Results {
			if i > 0 && h.Score > ex.Results[i-1].Score {
				t.Errorf("%q: results not in decreasing score", ex.Query)
			}
			switch ex.Direction {
			case "text_to_image":
				right := slices.Contains(captionsOf[h.Key], ex.Query)
				if h.Correct != right {
					t.Errorf("%q -> %s marked correct=%v", ex.Query, h.Key, h.Correct)
				}
				checkJPEGURI(t, h.Image)
			case "image_to_text":
				right := h.Key == ex.Query
				if h.Correct != right || !slices.Contains(captionsOf[h.Key], h.Text) {
					t.Errorf("%s -> %q (%s) marked correct=%v", ex.Query, h.Text, h.Key, h.Correct)
				}
			default:
				t.Errorf("direction %q", ex.Direction)
			}
		}
		if ex.Direction == "image_to_text" {
			checkJPEGURI(t, ex.QueryImg)
		}
	}
	if !strings.Contains(report.String(), "text_retrieval_recall@1") {
		t.Errorf("report:\n%s", report.String())
	}
}

func checkJPEGURI(t *testing.T, uri string) {
	t.Helper()
	b64, ok := strings.CutPrefix(uri, "data:image/jpeg;base64,")
	if !ok {
		t.Errorf("image %.40q is not a JPEG data URI", uri)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err == nil {
		_, err = jpeg.Decode(bytes.NewReader(raw))
	}
	if err != nil {
		t.Errorf("data URI image: %v", err)
	}
}

func TestRetrievalErrors(t *testing.T) {
	ckpt := evalCheckpoint(t)
	data := evalDataset(t, 12, 1) // its zeroshot split holds one image
	for _, tc := range []struct {
		name string
		opts RetrievalOptions
		want string
	}{
		{"missing checkpoint", RetrievalOptions{Checkpoint: filepath.Join(t.TempDir(), "none.safetensors"), Data: data}, "no such file"},
		{"one image", RetrievalOptions{Checkpoint: ckpt, Data: data, Split: "zeroshot"}, "1 images with captions, need at least 2"},
		{"unknown split", RetrievalOptions{Checkpoint: ckpt, Data: data, Split: "test"}, `no split "test"`},
		{"not a dataset", RetrievalOptions{Checkpoint: ckpt, Data: t.TempDir()}, "manifest"},
		{"no data", RetrievalOptions{Checkpoint: ckpt}, "--data is required"},
		{"no out", RetrievalOptions{Checkpoint: ckpt, Data: data}, "--out is required"},
	} {
		if tc.name != "no out" {
			tc.opts.Out = filepath.Join(t.TempDir(), "r.json")
		}
		tc.opts.Log = stagetest.Quiet
		_, err := Retrieval(context.Background(), tc.opts)
		t.Logf("%s: %v", tc.name, err)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if tc.opts.Out != "" {
			if _, statErr := os.Stat(tc.opts.Out); statErr == nil {
				t.Errorf("%s: a result was written despite the error", tc.name)
			}
		}
	}
}
