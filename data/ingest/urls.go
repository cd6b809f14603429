package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/progress"
)

// Names of what the urls source keeps in its directory (URLOptions.Dir), beside the shards.
const (
	DownloadLogName = "downloads.jsonl" // one DownloadEntry per URL tried: img2dataset's status and error_message
	DownloadDirName = "downloads"       // the fetched images, one file per URL; removable once prepare is done
)

// URLOptions describe a list of image URLs with captions and where their downloads go.
type URLOptions struct {
	// Input is a list file or a glob of them: Parquet (LAION, DataComp), CSV or TSV with a
	// header row, or JSONL. The format follows the extension (.parquet, .csv, .tsv, .jsonl);
	// other names are detected from the first line.
	Input string
	// URLColumn and CaptionColumn name the columns; empty means "url" and "caption".
	URLColumn, CaptionColumn string
	// Dir holds the download log and the downloaded images (DownloadLogName, DownloadDirName):
	// a rerun with the same Dir fetches only the URLs that the log does not record yet.
	Dir    string
	Fetch  FetchOptions
	Limits Limits
	// Keep, when set, picks the rows of this run by key (prepare --part): the others are
	// neither downloaded nor yielded nor logged.
	Keep func(key string) bool
	// Log receives progress lines (URLs done, success rate) every few seconds and a summary
	// at the end; nil means slog.Default().
	Log *slog.Logger
}

// URLSource downloads the images of a URL list; see URLs.
type URLSource struct {
	opts  URLOptions
	files []string
	cache *imageRoot
}

// URLs returns a source that downloads the image of every row of a URL list (img2dataset's
// job) and yields it with its caption. Rows are yielded in list order with keys of the row's
// index in the list ("000000042", counted over the files of a glob in name order) while up to
// Fetch.Workers downloads run at once, at most Fetch.PerHost per host.
//
// Every URL tried is recorded in Dir/downloads.jsonl with its status (success or
// failed_to_download) and error_message; failures are also rejects (Reason* download
// constants). A rerun after an interruption (ctx's end, Ctrl-C) fetches nothing that the log
// records: successes are read back from Dir/downloads/, failures are rejected again from the
// log. A URL that appears twice in the list is fetched once.
func URLs(opts URLOptions) (*URLSource, error) {
	opts.Limits = opts.Limits.withDefaults()
	if opts.URLColumn == "" {
		opts.URLColumn = "url"
	}
	if opts.CaptionColumn == "" {
		opts.CaptionColumn = "caption"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	files, err := inputFiles("urls", opts.Input)
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("urls: the download directory must be given")
	}
	cacheDir := filepath.Join(opts.Dir, DownloadDirName)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("urls: %w", err)
	}
	cache, err := newImageRoot(cacheDir, opts.Limits.MaxImageBytes)
	if err != nil {
		return nil, fmt.Errorf("urls: %w", err)
	}
	return &URLSource{opts: opts, files: files, cache: cache}, nil
}

// Name returns "urls:<input>".
func (s *URLSource) Name() string { return "urls:" + s.opts.Input }

// Classes returns nil: URL lists are unlabelled.
func (s *URLSource) Classes() []string { return nil }

// urlRow is one row of the list, or a reject of its parser.
type urlRow struct {
	index    int64
	url      string
	captions []string
	origin   string
	reject   *Reject
}

// urlJob is one row on its way out: resolved from the log at once, or by a download.
type urlJob struct {
	row    urlRow
	leader *urlJob       // an earlier row of the same URL, whose result this one shares
	done   chan struct{} // closed when entry is set
	entry  DownloadEntry // the outcome
	err    error         // a failure to record the outcome: stops the scan
}

// Scan downloads the list's images and yields them in list order.
func (s *URLSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	known, torn, err := readDownloadLog(filepath.Join(s.opts.Dir, DownloadLogName), s.opts.Limits.MaxRecords)
	if err != nil {
		return fmt.Errorf("urls: %w", err)
	}
	log, err := openDownloadLog(filepath.Join(s.opts.Dir, DownloadLogName))
	if err != nil {
		return fmt.Errorf("urls: %w", err)
	}
	defer log.close()
	if torn > 0 {
		s.opts.Log.Warn("urls: unreadable lines in the download log; their URLs are fetched again", "lines", torn, "log", log.path)
	}
	if len(known) > 0 {
		s.opts.Log.Info("urls: resuming from the download log", "recorded", len(known), "log", log.path)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetch := newFetcher(s.opts.Fetch, s.opts.Limits.MaxImageBytes)
	defer fetch.client.CloseIdleConnections()
	window := 4 * fetch.opts.Workers

	rows := make(chan urlRow, 256)
	var listErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(rows)
		listErr = s.readList(ctx, rows)
	}()
	jobs := make(chan *urlJob, window)
	for range fetch.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s.download(ctx, fetch, log, j)
			}
		}()
	}
	// stop ends the list reader and the workers: on every return, and before the summary.
	stop := sync.OnceFunc(func() {
		cancel()
		close(jobs)
		for range rows { // unblocks the list reader, which then sees ctx's end
		}
		wg.Wait()
	})
	defer stop()

	st := &urlStats{bar: progress.New(nil, s.opts.Log, "download", -1)}
	defer st.bar.Finish()
	inflight := map[string]*urlJob{} // URLs being fetched in this run
	var pending []*urlJob
	rowsOpen := true
	for rowsOpen || len(pending) > 0 {
		var in chan urlRow
		if rowsOpen && len(pending) < window {
			in = rows
		}
		var head chan struct{}
		if len(pending) > 0 {
			head = pending[0].done
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r, ok := <-in:
			if !ok {
				rowsOpen = false
				break
			}
			j := &urlJob{row: r, done: make(chan struct{})}
			pending = append(pending, j)
			switch e, ok := known[r.url]; {
			case r.reject != nil:
				close(j.done)
			case ok && (e.Status != StatusSuccess || s.cached(e.File)):
				j.entry = e
				st.resumed++
				close(j.done)
			case inflight[r.url] != nil:
				j.leader = inflight[r.url]
				close(j.done)
			default:
				inflight[r.url] = j
				jobs <- j // never blocks: jobs holds window, pending at most window
			}
		case <-head:
			j := pending[0]
			pending = pending[1:]
			if j.leader != nil {
				select {
				case <-j.leader.done:
				case <-ctx.Done():
					return ctx.Err()
				}
				j.entry = j.leader.entry
			} else if j.row.reject == nil && inflight[j.row.url] == j {
				delete(inflight, j.row.url)
				known[j.row.url] = j.entry
			}
			if j.err != nil {
				return j.err
			}
			if err := s.emit(j, st, yield, reject); err != nil {
				return err
			}
		}
	}
	stop()
	if listErr != nil {
		return listErr
	}
	s.opts.Log.Info("urls: done", "urls", st.ok+st.failed, "success", st.ok, "failed", st.failed,
		"success_rate", st.rate(), "from_earlier_runs", st.resumed, "log", log.path)
	return log.close()
}

// urlStats counts outcomes for the progress lines.
type urlStats struct {
	bar                 *progress.Bar
	ok, failed, resumed int64
}

func (st *urlStats) rate() string {
	if st.ok+st.failed == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(st.ok)/float64(st.ok+st.failed))
}

// emit hands one finished row to yield or reject, on the calling goroutine.
func (s *URLSource) emit(j *urlJob, st *urlStats, yield func(Item) error, reject func(Reject) error) error {
	if j.row.reject != nil {
		return reject(*j.row.reject)
	}
	key := fmt.Sprintf("%09d", j.row.index)
	e := j.entry
	if e.Status != StatusSuccess {
		st.failed++
		st.bar.Add(1, fmt.Sprintf("%d ok, %d failed (%s ok)", st.ok, st.failed, st.rate()))
		return reject(Reject{Origin: j.row.origin, Key: key, Reason: e.Reason,
			Detail: fmt.Sprintf("%s: %s", e.URL, e.ErrorMessage)})
	}
	st.ok++
	st.bar.Add(1, fmt.Sprintf("%d ok, %d failed (%s ok)", st.ok, st.failed, st.rate()))
	return yield(Item{Key: key, Captions: j.row.captions, Origin: j.row.origin + " " + e.URL,
		Load: s.cache.loader(filepath.FromSlash(e.File))})
}

// cached reports whether a logged download is still in the cache.
func (s *URLSource) cached(file string) bool {
	_, reason, _ := s.cache.resolve(file)
	return reason == ""
}

// cacheFile is where the image of a URL is kept, relative to the cache: a hash of the URL,
// spread over 256 directories.
func cacheFile(u string) string {
	sum := sha256.Sum256([]byte(u))
	h := hex.EncodeToString(sum[:])
	return h[:2] + "/" + h
}

// download fetches one job's URL, stores the image and records the outcome. An interrupted
// download records nothing, so that a rerun tries it again.
func (s *URLSource) download(ctx context.Context, fetch *fetcher, log *downloadLog, j *urlJob) {
	defer close(j.done)
	res, err := fetch.fetch(ctx, j.row.url)
	if err != nil {
		j.err = err
		return
	}
	e := DownloadEntry{URL: j.row.url, Key: fmt.Sprintf("%09d", j.row.index), Status: StatusSuccess,
		HTTPStatus: res.httpStatus, ContentType: res.contentType, Attempts: res.attempts}
	if res.reason != "" {
		e.Status, e.Reason, e.ErrorMessage = StatusFailedToDownload, res.reason, res.message
	} else {
		e.File, e.Bytes = cacheFile(j.row.url), int64(len(res.body))
		path := filepath.Join(s.cache.dir, filepath.FromSlash(e.File))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			j.err = fmt.Errorf("urls: %w", err)
			return
		}
		if err := atomicfile.WriteFile(path, res.body); err != nil {
			j.err = fmt.Errorf("urls: %w", err)
			return
		}
	}
	if err := log.add(e); err != nil {
		j.err = err
		return
	}
	j.entry = e
}

// readList sends the rows of every list file, in order, then returns; it stops at ctx's end.
func (s *URLSource) readList(ctx context.Context, out chan<- urlRow) error {
	var index int64
	send := func(r urlRow) error {
		select {
		case out <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	lim := s.opts.Limits
	record := func(origin, u string, caps []string) error {
		if index >= int64(lim.MaxRecords) {
			return fmt.Errorf("urls %s: more than %d rows (Limits.MaxRecords)", s.opts.Input, lim.MaxRecords)
		}
		row := urlRow{index: index, url: strings.TrimSpace(u), origin: origin}
		index++
		key := fmt.Sprintf("%09d", row.index)
		if s.opts.Keep != nil && !s.opts.Keep(key) {
			return nil
		}
		for _, c := range caps {
			clean, reason, detail := cleanCaption(c, lim.MaxCaptionBytes)
			if reason == "" && len(row.captions) >= lim.MaxCaptionsPerImage {
				reason, detail = ReasonTooManyCaptions, fmt.Sprintf("limit %d captions per image", lim.MaxCaptionsPerImage)
			}
			if reason != "" {
				if err := send(urlRow{reject: &Reject{Origin: origin, Key: key, Reason: reason, Detail: detail}}); err != nil {
					return err
				}
				continue
			}
			row.captions = append(row.captions, clean)
		}
		if len(row.captions) == 0 {
			return send(urlRow{reject: &Reject{Origin: origin, Key: key, Reason: ReasonNoCaption, Detail: "the row has no usable caption; not downloaded"}})
		}
		return send(row)
	}
	rejectRow := func(r Reject) error { return send(urlRow{reject: &r}) }
	for _, file := range s.files {
		if err := s.readListFile(ctx, file, record, rejectRow); err != nil {
			return err
		}
	}
	return nil
}

// readListFile parses one list file into record calls.
func (s *URLSource) readListFile(ctx context.Context, file string, record func(origin, u string, caps []string) error, reject func(Reject) error) error {
	if strings.EqualFold(filepath.Ext(file), ".parquet") {
		// The URL column is read through the key field of shard's mapping: shard.Read brings
		// the bounds of foreign Parquet (page, string and row limits) without a URL field of
		// its own in Mapping.
		m := shard.Mapping{Key: s.opts.URLColumn, Caption: s.opts.CaptionColumn}
		err := shard.Read(ctx, []string{file}, shard.ReadOptions{Workers: 1, Mapping: &m,
			Columns: []string{shard.ColKey, shard.ColCaption}}, func(smp shard.Sample) error {
			return record(fmt.Sprintf("%s row %d", filepath.Base(file), smp.Pos.FileRow), smp.Key, []string{smp.Caption})
		})
		if err != nil {
			return fmt.Errorf("urls %s: %w", file, err)
		}
		return nil
	}
	f, err := fileinput.OpenRegular(file)
	if err != nil {
		return fmt.Errorf("urls: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, streamBufferSize)
	format, err := detectFormat(file, br)
	switch {
	case err != nil:
		return fmt.Errorf("urls %s: %w", file, err)
	case strings.EqualFold(filepath.Ext(file), ".tsv"):
		format = FormatTSV
	case format == FormatToken:
		return fmt.Errorf("urls %s: a list needs a header row naming its columns (%s, %s)", file, s.opts.URLColumn, s.opts.CaptionColumn)
	}
	p := parser{file: filepath.Base(file), lim: s.opts.Limits, record: record, reject: reject,
		imageCol: s.opts.URLColumn, captionCol: s.opts.CaptionColumn}
	switch format {
	case FormatTSV:
		err = p.tsv(br)
	case FormatCSV:
		err = p.csv(br)
	case FormatJSONL:
		err = p.jsonl(br)
	}
	return err
}
