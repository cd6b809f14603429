package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// Download statuses, as img2dataset writes them in its `status` column.
const (
	StatusSuccess          = "success"
	StatusFailedToDownload = "failed_to_download"
)

// DownloadEntry is one line of a download log: what became of one URL.
type DownloadEntry struct {
	URL          string `json:"url"`
	Key          string `json:"key"`
	Status       string `json:"status"`                  // StatusSuccess or StatusFailedToDownload
	ErrorMessage string `json:"error_message,omitempty"` // img2dataset's column: why it failed
	Reason       string `json:"reason,omitempty"`        // the Reject reason of a failure
	HTTPStatus   int    `json:"http_status,omitempty"`   // of the last attempt, when one answered
	ContentType  string `json:"content_type,omitempty"`  // as the server declared it
	Bytes        int64  `json:"bytes,omitempty"`         // size of the image fetched
	File         string `json:"file,omitempty"`          // the image, relative to the download cache
	Attempts     int    `json:"attempts,omitempty"`
}

// MaxDownloadLogLine bounds one line of a download log; a longer line (only a damaged log
// has one) is skipped on reading, so its URL is fetched again.
const MaxDownloadLogLine = 64 << 10

// readDownloadLog reads the entries of a download log for a resumed run, the last entry of a
// URL winning. A missing log is an empty one. Lines that do not parse (the torn last line of
// an interrupted run, a damaged or over-long line) are skipped and counted: their URLs are
// fetched again, which is the safe direction.
func readDownloadLog(path string, maxEntries int) (map[string]DownloadEntry, int, error) {
	f, err := fileinput.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]DownloadEntry{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("download log: %w", err)
	}
	defer f.Close()
	return parseDownloadLog(f, maxEntries)
}

// parseDownloadLog reads download log lines from r; see readDownloadLog. It holds at most
// maxEntries distinct URLs and fails beyond that, as a captions file beyond MaxRecords does.
func parseDownloadLog(r io.Reader, maxEntries int) (map[string]DownloadEntry, int, error) {
	entries := map[string]DownloadEntry{}
	skipped := 0
	br := bufio.NewReaderSize(r, MaxDownloadLogLine+2)
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("download log: %w", err)
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			var e DownloadEntry
			if tooLong || !utf8.Valid(line) || json.Unmarshal(line, &e) != nil || !e.valid() {
				skipped++
			} else {
				if _, seen := entries[e.URL]; !seen && len(entries) >= maxEntries {
					return nil, 0, fmt.Errorf("download log: more than %d URLs (Limits.MaxRecords)", maxEntries)
				}
				entries[e.URL] = e
			}
		}
		if err == io.EOF {
			return entries, skipped, nil
		}
	}
}

// valid reports whether e can be trusted on resume: a known status, and a success names its
// file.
func (e DownloadEntry) valid() bool {
	switch e.Status {
	case StatusSuccess:
		return e.URL != "" && e.File != ""
	case StatusFailedToDownload:
		return e.URL != ""
	}
	return false
}

// downloadLog appends entries to a download log, one JSON line each, written with a single
// write so that an interruption tears at most the last line. Safe for concurrent use.
type downloadLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openDownloadLog(path string) (*downloadLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("download log: %w", err)
	}
	if _, err := fileinput.CheckOpened(f, path); err != nil {
		return nil, fmt.Errorf("download log: %w", err)
	}
	// An interrupted run may have torn the last line: end it, so that the next entry starts
	// a line of its own (the torn one is skipped on reading).
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("download log: %w", err)
			}
		}
	}
	return &downloadLog{path: path, f: f}, nil
}

func (l *downloadLog) add(e DownloadEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("download log %s: %w", l.path, err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("download log %s: %w", l.path, err)
	}
	return nil
}

func (l *downloadLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
