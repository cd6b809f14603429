package prepare_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/stages/prepare"
)

func smallPNG(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = byte(seed*17 + i)
	}
	var b bytes.Buffer
	stagetest.Must(t, png.Encode(&b, img))
	return b.Bytes()
}

// TestPrepareURLs downloads a CSV URL list through prepare, is interrupted part-way, and
// finishes on the rerun: shards hold the successes, downloads.jsonl every URL's status, and
// no URL whose download finished is fetched twice.
func TestPrepareURLs(t *testing.T) {
	const n = 30
	var mu sync.Mutex
	hits := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		total := 0
		for _, h := range hits {
			total += h
		}
		mu.Unlock()
		if total == n/2 {
			cancel() // Ctrl-C half way through the first run
		}
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/img/%d.png", &i); err != nil || i%10 == 7 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(smallPNG(t, i))
	}))
	defer srv.Close()
	dir := t.TempDir()
	var list strings.Builder
	list.WriteString("url,caption\n")
	for i := range n {
		fmt.Fprintf(&list, "%s/img/%d.png,picture number %d\n", srv.URL, i, i)
	}
	input := filepath.Join(dir, "list.csv")
	stagetest.Must(t, os.WriteFile(input, []byte(list.String()), 0o644))

	cfg := stagetest.PrepareConfig(filepath.Join(dir, "ds"))
	cfg.Source, cfg.Input = "urls", input
	cfg.URLs.Fetch = ingest.FetchOptions{Workers: 4, PerHost: 2}
	if _, err := prepare.Run(ctx, cfg, stagetest.Quiet, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	logged := readLog(t, filepath.Join(cfg.Out, ingest.DownloadLogName))
	if len(logged) == 0 {
		t.Fatal("the interrupted run recorded no download")
	}
	sum := stagetest.Prepare(t, cfg)
	if got, want := sum.Images(), int64(n-n/10); got != want {
		t.Errorf("wrote %d images, want %d", got, want)
	}
	if got := sum.Rejects[ingest.ReasonHTTPStatus]; got != n/10 {
		t.Errorf("%d HTTP rejects, want %d (rejects %v)", got, n/10, sum.Rejects)
	}
	final := readLog(t, filepath.Join(cfg.Out, ingest.DownloadLogName))
	if len(final) != n {
		t.Errorf("the download log records %d URLs, want %d", len(final), n)
	}
	for u, e := range final {
		var i int
		fmt.Sscanf(strings.TrimPrefix(u, srv.URL), "/img/%d.png", &i)
		if want := i%10 != 7; (e.Status == ingest.StatusSuccess) != want || (!want && e.ErrorMessage == "") {
			t.Errorf("%s: %+v", u, e)
		}
		p := strings.TrimPrefix(u, srv.URL)
		mu.Lock()
		h := hits[p]
		mu.Unlock()
		if _, first := logged[u]; first && h != 1 {
			t.Errorf("%s was recorded by the first run and fetched %d times in all", p, h)
		}
	}
	recs := stagetest.ReadAll(t, cfg.Out, "train")
	recs = append(recs, stagetest.ReadAll(t, cfg.Out, "val")...)
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(r.Key, "%d", &i); err != nil || r.Caption != fmt.Sprintf("picture number %d", i) {
			t.Errorf("record %s: caption %q", r.Key, r.Caption)
		}
	}
}

func readLog(t *testing.T, path string) map[string]ingest.DownloadEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]ingest.DownloadEntry{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e ingest.DownloadEntry
		stagetest.Must(t, json.Unmarshal(sc.Bytes(), &e))
		out[e.URL] = e
	}
	return out
}

// TestPrepareWebDataset prepares tar shards as img2dataset writes them.
func TestPrepareWebDataset(t *testing.T) {
	dir := t.TempDir()
	for s := range 2 {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		add := func(name string, body []byte) {
			stagetest.Must(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
			_, err := tw.Write(body)
			stagetest.Must(t, err)
		}
		for i := range 5 {
			key := fmt.Sprintf("%05d%04d", s, i)
			add(key+".jpg", smallPNG(t, s*5+i))
			if i%2 == 0 {
				add(key+".txt", []byte(fmt.Sprintf("caption %s", key)))
			} else {
				add(key+".json", []byte(fmt.Sprintf(`{"caption": "caption %s", "url": "http://x"}`, key)))
			}
		}
		stagetest.Must(t, tw.Close())
		stagetest.Must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.tar", s)), b.Bytes(), 0o644))
	}
	cfg := stagetest.PrepareConfig(filepath.Join(dir, "ds"))
	cfg.Source, cfg.Input = "webdataset", filepath.Join(dir, "*.tar")
	sum := stagetest.Prepare(t, cfg)
	if sum.Images() != 10 || len(sum.Rejects) != 0 {
		t.Fatalf("wrote %d images, rejects %v; want 10 and none", sum.Images(), sum.Rejects)
	}
	for _, split := range []string{"train", "val"} {
		for _, r := range stagetest.ReadAll(t, cfg.Out, split) {
			if r.Caption != "caption "+r.Key || r.Width != 32 {
				t.Errorf("record %s: caption %q, width %d", r.Key, r.Caption, r.Width)
			}
		}
	}
}

// TestPrepareHuggingFaceImageFolder: --captions names an imagefolder directory, and --images
// defaults to it.
func TestPrepareHuggingFaceImageFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "train")
	stagetest.Must(t, os.MkdirAll(dir, 0o755))
	var meta strings.Builder
	for i := range 6 {
		name := fmt.Sprintf("%04d.png", i)
		stagetest.Must(t, os.WriteFile(filepath.Join(dir, name), smallPNG(t, i), 0o644))
		fmt.Fprintf(&meta, `{"file_name": %q, "text": "image %d"}`+"\n", name, i)
	}
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "metadata.jsonl"), []byte(meta.String()), 0o644))
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source, cfg.Captions.File = "captions", dir
	if sum := stagetest.Prepare(t, cfg); sum.Images() != 6 || len(sum.Rejects) != 0 {
		t.Fatalf("wrote %d images, rejects %v; want 6 and none", sum.Images(), sum.Rejects)
	}
}
