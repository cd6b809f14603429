package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.uber.org/goleak"
)

// pngBytes encodes a small image whose colour depends on seed.
func pngBytes(t testing.TB, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for i := range img.Pix {
		img.Pix[i] = byte(seed*31 + i)
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageServer serves the kinds of answer a URL list meets in the wild, and counts the
// requests per path and the most /ok/ requests in flight at once.
type imageServer struct {
	*httptest.Server
	mu       sync.Mutex
	hits     map[string]int
	inflight atomic.Int32
	peak     atomic.Int32
}

func newImageServer(t *testing.T) *imageServer {
	s := &imageServer{hits: map[string]int{}}
	img := pngBytes(t, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // lets concurrent requests overlap
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	var flaky atomic.Int32
	mux.HandleFunc("/flaky.png", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	})
	mux.HandleFunc("/gone.png", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/moved.png", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok/target.png", http.StatusFound)
	})
	mux.HandleFunc("/loop.png", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop.png", http.StatusFound)
	})
	mux.HandleFunc("/lying.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write([]byte("<html><body>Not found</body></html>"))
	})
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(img)
	})
	mux.HandleFunc("/octet.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(img)
	})
	mux.HandleFunc("/huge.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", "100000000")
		w.Write(img)
	})
	mux.HandleFunc("/endless.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
		chunk := make([]byte, 4096)
		for i := 0; i < 64 && r.Context().Err() == nil; i++ {
			w.Write(chunk)
		}
	})
	mux.HandleFunc("/truncated.png", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", len(img)+1000)
		buf.Write(img)
		buf.Flush()
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(r.URL.Path)
		// Only answers that end normally are counted in flight: the handler of a request the
		// client gave up on (a timeout) may still run after the client freed its slot.
		if strings.HasPrefix(r.URL.Path, "/ok/") {
			n := s.inflight.Add(1)
			defer s.inflight.Add(-1)
			for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// count records a request for path.
func (s *imageServer) count(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[path]++
}

func (s *imageServer) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// testFetch are fetch options that keep the test fast.
func testFetch() FetchOptions {
	return FetchOptions{Workers: 6, PerHost: 2, Timeout: 300 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond}
}

func scanURLs(t *testing.T, src *URLSource, ctx context.Context) (result, error) {
	t.Helper()
	var r result
	err := src.Scan(ctx, func(it Item) error {
		if _, err := it.Load(); err != nil {
			return fmt.Errorf("load %s: %w", it.Key, err)
		}
		r.items = append(r.items, it)
		return nil
	}, func(rj Reject) error { r.rejects = append(r.rejects, rj); return nil })
	return r, err
}

// TestURLs downloads a list of every kind of answer and checks what each became, in the
// items, the rejects and the download log; then a rerun fetches nothing again.
func TestURLs(t *testing.T) {
	srv := newImageServer(t)
	dir := t.TempDir()
	paths := []string{"/ok/1.png", "/slow.png", "/flaky.png", "/gone.png", "/moved.png", "/loop.png", "/lying.jpg",
		"/page.html", "/octet.png", "/huge.png", "/endless.png", "/truncated.png", "/ok/1.png", "/ok/2.png"}
	want := map[string]string{ // by URL path: the reject reason, or "" for an image
		"/ok/1.png": "", "/slow.png": ReasonDownloadTimeout, "/flaky.png": "", "/gone.png": ReasonHTTPStatus,
		"/moved.png": "", "/loop.png": ReasonDownloadFailed, "/lying.jpg": ReasonNotImage, "/page.html": ReasonNotImage,
		"/octet.png": "", "/huge.png": ReasonDownloadTooLarge, "/endless.png": ReasonDownloadTooLarge,
		"/truncated.png": ReasonDownloadFailed, "/ok/2.png": "", "ftp://x/y.png": ReasonBadURL,
	}
	var list strings.Builder
	list.WriteString("caption,url\n")
	for i, p := range paths {
		fmt.Fprintf(&list, "\"caption %d, of %s\",%s\n", i, p, srv.URL+p)
	}
	list.WriteString("a file,ftp://x/y.png\n")
	list.WriteString(",/no/caption.png\n")
	input := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(input, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	opts := URLOptions{Input: input, Dir: out, Fetch: testFetch(), Limits: Limits{MaxImageBytes: 100_000}}
	src, err := URLs(opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanURLs(t, src, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range got.items {
		keys = append(keys, it.Key)
		if !strings.HasPrefix(it.Captions[0], "caption ") {
			t.Errorf("item %s: captions %q", it.Key, it.Captions)
		}
	}
	if w := "000000000 000000002 000000004 000000008 000000012 000000013"; strings.Join(keys, " ") != w {
		t.Errorf("keys %q, want %q (list order, successes only)", strings.Join(keys, " "), w)
	}
	reasons := map[string]string{}
	for _, r := range got.rejects {
		if r.Reason == ReasonEmptyCaption || r.Reason == ReasonNoCaption {
			reasons["no caption"] = r.Reason
			continue
		}
		url, _, _ := strings.Cut(r.Detail, ": ")
		reasons[strings.TrimPrefix(url, srv.URL)] = r.Reason
	}
	for p, reason := range want {
		if reason != "" && reasons[p] != reason {
			t.Errorf("%s: reject reason %q, want %q", p, reasons[p], reason)
		}
	}
	if reasons["no caption"] == "" {
		t.Error("the row without a caption was not rejected")
	}
	if n := srv.hitsOf("/ok/1.png"); n != 1 {
		t.Errorf("a URL listed twice was fetched %d times", n)
	}
	if n := srv.hitsOf("/flaky.png"); n != 2 {
		t.Errorf("the flaky URL was fetched %d times, want 2 (one retry)", n)
	}
	if n := srv.hitsOf("/gone.png"); n != 1 {
		t.Errorf("HTTP 404 was retried: %d requests", n)
	}
	if n := srv.hitsOf("/slow.png"); n != 2 {
		t.Errorf("a timeout was tried %d times, want 2 (one retry)", n)
	}
	if n := srv.hitsOf("/caption.png") + srv.hitsOf("/no/caption.png"); n != 0 {
		t.Errorf("a row without caption was fetched")
	}
	if p := srv.peak.Load(); p > 2 {
		t.Errorf("%d requests at once to one host, PerHost is 2", p)
	}

	entries, torn, err := readDownloadLog(filepath.Join(out, DownloadLogName), 100)
	if err != nil || torn != 0 {
		t.Fatalf("download log: %v, %d torn lines", err, torn)
	}
	if len(entries) != len(want) {
		t.Errorf("download log has %d URLs, want %d", len(entries), len(want))
	}
	for u, e := range entries {
		p := strings.TrimPrefix(u, srv.URL)
		switch {
		case want[p] == "" && e.Status != StatusSuccess, want[p] != "" && e.Status != StatusFailedToDownload:
			t.Errorf("%s: status %q", p, e.Status)
		case want[p] != "" && e.ErrorMessage == "":
			t.Errorf("%s: no error_message", p)
		}
	}

	// A rerun with the same directory fetches nothing and finds the same outcome.
	before := srv.hitsSnapshot()
	src2, err := URLs(opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := scanURLs(t, src2, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after := srv.hitsSnapshot(); after != before {
		t.Errorf("the rerun fetched again: hits %s, before %s", after, before)
	}
	if len(again.items) != len(got.items) || len(again.rejects) != len(got.rejects) {
		t.Errorf("rerun: %d items %d rejects, first run %d, %d", len(again.items), len(again.rejects), len(got.items), len(got.rejects))
	}
}

func (s *imageServer) hitsSnapshot() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.hits)
}

// TestURLsResume interrupts a download part-way, as Ctrl-C does, and checks that the rerun
// fetches each URL only once in all and ends with every image.
func TestURLsResume(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	srv := newImageServer(t)
	dir := t.TempDir()
	const n = 40
	var list strings.Builder
	list.WriteString("url\tcaption\n")
	for i := range n {
		fmt.Fprintf(&list, "%s/ok/%d.png\tpicture %d\n", srv.URL, i, i)
	}
	input := filepath.Join(dir, "list.tsv")
	if err := os.WriteFile(input, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := URLOptions{Input: input, Dir: filepath.Join(dir, "out"), Fetch: testFetch()}
	src, err := URLs(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := 0
	err = src.Scan(ctx, func(Item) error {
		if first++; first == 10 {
			cancel()
		}
		return nil
	}, func(r Reject) error { return fmt.Errorf("reject %v", r) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted scan: %v, want context.Canceled", err)
	}
	// Requests the interruption abandoned may still be in the server's handlers: the peak
	// per host is measured on the rerun alone.
	for deadline := time.Now().Add(5 * time.Second); srv.inflight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	srv.peak.Store(0)
	recorded := map[string]bool{}
	entries, _, err := readDownloadLog(filepath.Join(opts.Dir, DownloadLogName), n)
	if err != nil {
		t.Fatal(err)
	}
	for u := range entries {
		recorded[u] = true
	}
	src2, err := URLs(opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanURLs(t, src2, context.Background())
	if err != nil || len(got.items) != n || len(got.rejects) != 0 {
		t.Fatalf("rerun: %d items, %d rejects, %v; want %d items", len(got.items), len(got.rejects), err, n)
	}
	for i, it := range got.items {
		if it.Key != fmt.Sprintf("%09d", i) || it.Captions[0] != fmt.Sprintf("picture %d", i) {
			t.Fatalf("item %d: %s %q", i, it.Key, it.Captions)
		}
	}
	for i := range n {
		// A download in flight at the interruption is not recorded and is fetched again;
		// every download that finished is recorded and is not.
		p := fmt.Sprintf("/ok/%d.png", i)
		if h := srv.hitsOf(p); h != 1 && (recorded[srv.URL+p] || h > 2) {
			t.Errorf("%s fetched %d times over the two runs (recorded by the first: %v)", p, h, recorded[srv.URL+p])
		}
	}
	srv.Close()
	goleak.VerifyNone(t, leaks) // no fetch worker, list reader or idle connection left behind
	if p := srv.peak.Load(); p != 2 {
		t.Errorf("at most %d requests at once to one host, want PerHost = 2", p)
	}
	if len(recorded) < 10 {
		t.Errorf("the interrupted run recorded %d URLs, yielded %d", len(recorded), first)
	}
}

// TestURLsParquet reads a LAION-style Parquet list (URL and TEXT columns), and Keep picks
// rows by key.
func TestURLsParquet(t *testing.T) {
	srv := newImageServer(t)
	dir := t.TempDir()
	type row struct {
		URL  string `parquet:"URL"`
		TEXT string `parquet:"TEXT"`
	}
	rows := []row{{srv.URL + "/ok/a.png", "first"}, {srv.URL + "/ok/b.png", "second"}, {srv.URL + "/ok/c.png", "third"}}
	input := filepath.Join(dir, "part-0.parquet")
	if err := parquet.WriteFile(input, rows); err != nil {
		t.Fatal(err)
	}
	src, err := URLs(URLOptions{Input: input, URLColumn: "URL", CaptionColumn: "TEXT", Dir: filepath.Join(dir, "out"),
		Fetch: testFetch(), Keep: func(key string) bool { return key != "000000001" }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanURLs(t, src, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got.keys(), ","); s != "000000000: first,000000002: third" || len(got.rejects) != 0 {
		t.Errorf("items %s, rejects %v", s, got.rejects)
	}
	if srv.hitsOf("/ok/b.png") != 0 {
		t.Error("a row Keep dropped was downloaded")
	}
}

// TestURLsBadInput: what stops a urls source before any download.
func TestURLsBadInput(t *testing.T) {
	dir := t.TempDir()
	noHeader := filepath.Join(dir, "cc3m.tsv")
	os.WriteFile(noHeader, []byte("a dog\thttp://example.invalid/a.jpg\n"), 0o644)
	if _, err := URLs(URLOptions{Input: filepath.Join(dir, "none*.csv"), Dir: dir}); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Errorf("missing input: %v", err)
	}
	src, err := URLs(URLOptions{Input: noHeader, Dir: filepath.Join(dir, "out")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = scanURLs(t, src, context.Background())
	if err == nil || !strings.Contains(err.Error(), `"url"`) {
		t.Errorf("a list without the url column: %v", err)
	}
}

// TestFetcherForgetsIdleHosts: a host's slots go once nothing runs or waits on them (a list
// of millions of hosts must not keep millions of semaphores), and the limit holds meanwhile.
func TestFetcherForgetsIdleHosts(t *testing.T) {
	srv := newImageServer(t)
	f := newFetcher(testFetch(), 1<<20)
	defer f.client.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if res, err := f.fetch(context.Background(), fmt.Sprintf("%s/ok/%d.png", srv.URL, i)); err != nil || res.reason != "" {
				t.Errorf("fetch %d: %v %s", i, err, res.message)
			}
		})
	}
	wg.Wait()
	if p := srv.peak.Load(); p > 2 {
		t.Errorf("%d requests at once to one host, PerHost is 2", p)
	}
	if n := len(f.hosts); n != 0 {
		t.Errorf("%d hosts still held after every fetch ended", n)
	}
}
