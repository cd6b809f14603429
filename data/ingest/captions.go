package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/readable"
)

// Caption file formats.
const (
	FormatAuto  = "auto"  // from the extension, else from the first line
	FormatToken = "token" // Flickr8k/Flickr30k: "name.jpg#n<TAB>caption", no header
	FormatCSV   = "csv"   // RFC 4180 CSV with a header row
	FormatTSV   = "tsv"   // tab-separated with a header row, no quoting
	FormatJSONL = "jsonl" // one JSON object per line
)

// Column names tried, in order, when CaptionsOptions leaves a column unnamed: open_clip's
// CsvDataset defaults first, then the plain names, then Hugging Face imagefolder's
// metadata.jsonl/metadata.csv ("file_name", "text").
var (
	defaultImageColumns   = []string{"filepath", "image", "file_name"}
	defaultCaptionColumns = []string{"title", "caption", "text"}
)

// MetadataNames are the captions files of a Hugging Face imagefolder, looked for in this
// order when CaptionsOptions.File is a directory.
var MetadataNames = []string{"metadata.jsonl", "metadata.csv"}

// CaptionsOptions describes a captions file and the images it refers to.
type CaptionsOptions struct {
	File   string // the captions file
	Images string // the images root that paths in File are relative to; default File's directory
	Format string // FormatAuto (""), FormatToken, FormatCSV, FormatTSV or FormatJSONL
	// ImageColumn and CaptionColumn name the fields (CSV/TSV header, JSONL keys) holding the
	// image path and the caption; empty means "filepath" else "image" else "file_name", and
	// "title" else "caption" else "text". A JSONL caption may also be a list of strings.
	ImageColumn, CaptionColumn string
	Limits                     Limits
	// Stdin is the stream read when File is "-" or "/dev/stdin"; nil means os.Stdin.
	Stdin io.Reader
}

// CaptionsSource reads a captions file; see Captions.
type CaptionsSource struct {
	opts   CaptionsOptions
	root   *imageRoot
	format string
	name   string // File's base name, for origins

	// stream is standard input, read once: format detection peeks at its buffered prefix
	// and Scan reads on from the same reader. in feeds it and ends blocked reads with a
	// context. Nil for a regular file.
	stream     *bufio.Reader
	in         *ctxReader
	streamRead bool
}

// streamBufferSize is the buffer of a captions stream: detection peeks at up to
// DefaultMaxLineBytes without consuming them.
const streamBufferSize = DefaultMaxLineBytes + 4<<10

// Captions returns a source of the images listed in a captions file, with all captions of
// each image grouped in file order (also when its lines are not adjacent).
//
// An image's key is its path relative to the images root, cleaned, slash-separated, without
// its extension: "1000268201_693b08cb0e" for Flickr's "1000268201_693b08cb0e.jpg#0", "dogs/rex"
// for "dogs/./rex.png". Paths are grouped before the extension is dropped, so "a.jpg" and
// "a.png" stay two images; they share the key "a", and prepare keeps the first.
//
// Captions are cleaned of surrounding white space and inner runs of it become one space.
// The whole file is parsed before the first item is yielded (to group captions), so it is
// held in memory, bounded by Limits.MaxRecords × Limits.MaxLineBytes.
//
// File "-" or "/dev/stdin" reads standard input (opts.Stdin), once: the format is detected
// from a buffered prefix that Scan then reads on from, and Images must be given. File may be
// a Hugging Face imagefolder directory: its metadata.jsonl (else metadata.csv) is read, with
// paths ("file_name") relative to that directory. Any other File must be a regular file: a
// named pipe or device is refused here, by name, rather than blocking on it.
func Captions(opts CaptionsOptions) (*CaptionsSource, error) {
	return CaptionsContext(context.Background(), opts)
}

// CaptionsContext is Captions with a context that ends a wait for the first line of a
// standard-input stream that does not come; the error then wraps ctx.Err().
func CaptionsContext(ctx context.Context, opts CaptionsOptions) (*CaptionsSource, error) {
	opts.Limits = opts.Limits.withDefaults()
	stdin := fileinput.IsStdin(opts.File)
	if !stdin {
		var err error
		if opts.File, err = metadataFile(opts.File); err != nil {
			return nil, err
		}
	}
	if opts.Images == "" {
		if stdin {
			return nil, errors.New("captions from standard input: the images root must be given; it cannot default to the captions file's directory")
		}
		opts.Images = filepath.Dir(opts.File)
	}
	switch opts.Format {
	case "", FormatAuto, FormatToken, FormatCSV, FormatTSV, FormatJSONL:
	default:
		return nil, fmt.Errorf("captions %s: unknown format %q (want auto, token, csv, tsv or jsonl)", opts.File, opts.Format)
	}
	root, err := newImageRoot(opts.Images, opts.Limits.MaxImageBytes)
	if err != nil {
		return nil, fmt.Errorf("captions %s: %w", opts.File, err)
	}
	s := &CaptionsSource{opts: opts, root: root, format: opts.Format, name: filepath.Base(opts.File)}
	auto := s.format == "" || s.format == FormatAuto
	if stdin {
		s.name = "stdin"
		in := opts.Stdin
		if in == nil {
			in = os.Stdin
		}
		s.in = &ctxReader{r: in, ctx: ctx}
		s.stream = bufio.NewReaderSize(s.in, max(streamBufferSize, opts.Limits.MaxLineBytes+2))
		if auto {
			if s.format, err = detectFormat("", s.stream); err != nil {
				return nil, fmt.Errorf("captions from standard input: %w", err)
			}
		}
		return s, nil
	}
	f, err := fileinput.OpenRegular(opts.File)
	if err != nil {
		return nil, fmt.Errorf("captions: %w", err)
	}
	defer f.Close()
	if auto {
		if s.format, err = detectFormat(opts.File, bufio.NewReaderSize(f, streamBufferSize)); err != nil {
			return nil, fmt.Errorf("captions %s: %w", opts.File, err)
		}
	}
	return s, nil
}

// metadataFile returns the captions file of a Hugging Face imagefolder directory, or file
// itself when it is not a directory.
func metadataFile(file string) (string, error) {
	st, err := os.Stat(file)
	if err != nil || !st.IsDir() {
		return file, nil // opening it reports what is wrong
	}
	for _, name := range MetadataNames {
		p := filepath.Join(file, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("captions: %w, and holds no %s of a Hugging Face imagefolder; name the captions file",
		&fileinput.NotRegularError{Path: file, Mode: st.Mode().Type()}, strings.Join(MetadataNames, " or "))
}

// Name returns "captions:<file> (<format>)".
func (s *CaptionsSource) Name() string { return "captions:" + s.opts.File + " (" + s.format + ")" }

// Format returns the format in use, after auto-detection.
func (s *CaptionsSource) Format() string { return s.format }

// Classes returns nil: captions files are unlabelled.
func (s *CaptionsSource) Classes() []string { return nil }

// Scan parses the file, then yields its images in order of first appearance.
// A standard-input stream can be scanned once; a read blocked on it ends with ctx.
func (s *CaptionsSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	if s.stream != nil {
		if s.streamRead {
			return errors.New("captions from standard input: the stream was read already; it can be scanned once")
		}
		s.streamRead = true
		s.in.ctx = ctx
		return s.scan(ctx, s.stream, yield, reject)
	}
	f, err := fileinput.OpenRegular(s.opts.File)
	if err != nil {
		return fmt.Errorf("captions: %w", err)
	}
	defer f.Close()
	return s.scan(ctx, f, yield, reject)
}

// group gathers the captions of one image path.
type group struct {
	path     string // as written in the file (first occurrence)
	origin   string // where it first appeared
	captions []string
}

func (s *CaptionsSource) scan(ctx context.Context, r io.Reader, yield func(Item) error, reject func(Reject) error) error {
	lim := s.opts.Limits
	var groups []*group
	index := map[string]*group{}
	records := 0
	// record takes one parsed line: an image path and its captions.
	record := func(origin, path string, caps []string) error {
		if records++; records > lim.MaxRecords {
			return fmt.Errorf("captions %s: more than %d records (Limits.MaxRecords)", s.opts.File, lim.MaxRecords)
		}
		if records%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		id, key := path, "" // paths that leave the root keep their raw text and get no key
		if filepath.IsLocal(filepath.FromSlash(path)) {
			id = filepath.Clean(filepath.FromSlash(path))
			key = keyOf(id)
		}
		g := index[id]
		if g == nil {
			g = &group{path: path, origin: origin}
			index[id] = g
			groups = append(groups, g)
		}
		for _, c := range caps {
			c, reason, detail := cleanCaption(c, lim.MaxCaptionBytes)
			if reason == "" && len(g.captions) >= lim.MaxCaptionsPerImage {
				reason, detail = ReasonTooManyCaptions, fmt.Sprintf("limit %d captions per image", lim.MaxCaptionsPerImage)
			}
			if reason != "" {
				if err := reject(Reject{Origin: origin, Key: key, Reason: reason, Detail: detail}); err != nil {
					return err
				}
				continue
			}
			g.captions = append(g.captions, c)
		}
		return nil
	}
	p := parser{file: s.name, lim: lim, record: record, reject: reject,
		imageCol: s.opts.ImageColumn, captionCol: s.opts.CaptionColumn}
	var err error
	switch s.format {
	case FormatToken:
		err = p.token(r)
	case FormatTSV:
		err = p.tsv(r)
	case FormatCSV:
		err = p.csv(r)
	case FormatJSONL:
		err = p.jsonl(r)
	}
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return err
		}
		clean, reason, detail := s.root.resolve(g.path)
		key := keyOf(clean)
		if reason == "" && len(g.captions) == 0 {
			reason, detail = ReasonNoCaption, "every caption of this image was rejected"
		}
		if reason != "" {
			if err := reject(Reject{Origin: g.origin, Key: key, Reason: reason, Detail: detail}); err != nil {
				return err
			}
			continue
		}
		if err := yield(Item{Key: key, Captions: g.captions, Origin: g.origin, Load: s.root.loader(clean)}); err != nil {
			return err
		}
	}
	return nil
}

// cleanCaption trims c and folds its inner white space, or says why c is rejected.
func cleanCaption(c string, maxBytes int) (clean, reason, detail string) {
	if !utf8.ValidString(c) {
		return "", ReasonInvalidUTF8, fmt.Sprintf("caption %s is not valid UTF-8", readable.Quote(truncate(c, 60)))
	}
	c = strings.Join(strings.Fields(c), " ")
	if c == "" {
		return "", ReasonEmptyCaption, "empty caption"
	}
	if len(c) > maxBytes {
		return "", ReasonCaptionTooLong, fmt.Sprintf("caption of %d bytes, limit %d", len(c), maxBytes)
	}
	return c, "", ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parser turns the lines of one format into records.
type parser struct {
	file                 string
	lim                  Limits
	imageCol, captionCol string
	record               func(origin, path string, caps []string) error
	reject               func(Reject) error
}

func (p *parser) origin(line int) string { return fmt.Sprintf("%s:%d", p.file, line) }

func (p *parser) bad(line int, reason, format string, args ...any) error {
	return p.reject(Reject{Origin: p.origin(line), Reason: reason, Detail: fmt.Sprintf(format, args...)})
}

// lines calls fn for each line of r without its line ending, numbered from 1, skipping blank
// lines and rejecting over-long ones without holding them.
func (p *parser) lines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, p.lim.MaxLineBytes+2) // room for "\r\n"
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of an over-long line
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("captions %s line %d: %w", p.file, n, err)
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		line = bytes.TrimRight(line, "\r\n")
		if tooLong || len(line) > p.lim.MaxLineBytes {
			if rerr := p.bad(n, ReasonLineTooLong, "line longer than %d bytes", p.lim.MaxLineBytes); rerr != nil {
				return rerr
			}
		} else if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// flickrName matches the image field of the token format: a name and a "#n" caption number.
var flickrName = regexp.MustCompile(`^(.+)#[0-9]+$`)

// token parses the Flickr8k/Flickr30k token format.
func (p *parser) token(r io.Reader) error {
	return p.lines(r, func(n int, line []byte) error {
		name, caption, ok := bytes.Cut(line, []byte("\t"))
		if !ok {
			return p.bad(n, ReasonBadLine, "no tab between image and caption")
		}
		if m := flickrName.FindSubmatch(name); m != nil {
			name = m[1]
		}
		return p.pathAndCaptions(n, string(name), []string{string(caption)})
	})
}

// pathAndCaptions checks a record's path field, trimmed of surrounding white space, and
// passes the record on.
func (p *parser) pathAndCaptions(n int, path string, caps []string) error {
	path = strings.TrimSpace(path)
	switch {
	case !utf8.ValidString(path):
		return p.bad(n, ReasonInvalidUTF8, "image path %s is not valid UTF-8", readable.Quote(truncate(path, 60)))
	case path == "":
		return p.bad(n, ReasonBadLine, "empty image path")
	}
	return p.record(p.origin(n), path, caps)
}

// columns finds the image and caption columns in a header row.
func (p *parser) columns(header []string) (img, capt int, err error) {
	find := func(named string, defaults []string, what string) (int, error) {
		names := defaults
		if named != "" {
			names = []string{named}
		}
		for _, name := range names {
			if i := slices.Index(header, name); i >= 0 {
				return i, nil
			}
		}
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = strconv.Quote(n)
		}
		return 0, fmt.Errorf("captions %s: no %s column %s in header %q", p.file, what, strings.Join(quoted, " or "), header)
	}
	if img, err = find(p.imageCol, defaultImageColumns, "image"); err != nil {
		return 0, 0, err
	}
	capt, err = find(p.captionCol, defaultCaptionColumns, "caption")
	return img, capt, err
}

// tsv parses tab-separated values with a header row and no quoting.
func (p *parser) tsv(r io.Reader) error {
	var header []string
	var img, capt int
	return p.lines(r, func(n int, line []byte) error {
		fields := strings.Split(string(line), "\t")
		if header == nil {
			header = fields
			var err error
			img, capt, err = p.columns(header)
			return err
		}
		if len(fields) != len(header) {
			return p.bad(n, ReasonBadLine, "%d fields, header has %d", len(fields), len(header))
		}
		return p.pathAndCaptions(n, fields[img], []string{fields[capt]})
	})
}

// errRecordTooLong stops a CSV record that grows past MaxLineBytes: a quoted field cannot be
// resynchronised, so it ends the scan.
var errRecordTooLong = errors.New("record too long")

// boundedRecords feeds a csv.Reader and fails once the record being read has pulled in more
// than max bytes (plus the csv.Reader's read-ahead): start is the input offset where the
// record began, which the caller sets after each record.
type boundedRecords struct {
	r           io.Reader
	read, start int64
	max         int64
}

// csvReadAhead is more than what csv.Reader buffers beyond the bytes it has consumed.
const csvReadAhead = 8 << 10

func (b *boundedRecords) Read(buf []byte) (int, error) {
	if b.read-b.start > b.max+csvReadAhead {
		return 0, errRecordTooLong
	}
	n, err := b.r.Read(buf)
	b.read += int64(n)
	return n, err
}

// csv parses RFC 4180 CSV with a header row.
func (p *parser) csv(r io.Reader) error {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	guard := &boundedRecords{r: br, max: int64(p.lim.MaxLineBytes)}
	cr := csv.NewReader(guard)
	cr.FieldsPerRecord = -1 // checked here, to reject rather than stop
	var header []string
	var img, capt int
	for {
		rec, err := cr.Read()
		guard.start = cr.InputOffset()
		if err == io.EOF {
			if header == nil {
				return fmt.Errorf("captions %s: empty file, no header", p.file)
			}
			return nil
		}
		var perr *csv.ParseError
		switch {
		case errors.Is(err, errRecordTooLong):
			return fmt.Errorf("captions %s: the record starting at byte %d is longer than %d bytes (Limits.MaxLineBytes)", p.file, guard.start, p.lim.MaxLineBytes)
		case errors.As(err, &perr) && header != nil:
			err = p.bad(perr.StartLine, ReasonBadLine, "%v", perr.Err)
		case err != nil && header == nil:
			return fmt.Errorf("captions %s: header: %w", p.file, err)
		case err != nil:
			return fmt.Errorf("captions %s: %w", p.file, err)
		case header == nil:
			header = slices.Clone(rec)
			img, capt, err = p.columns(header)
		default:
			line, _ := cr.FieldPos(0)
			if len(rec) != len(header) {
				err = p.bad(line, ReasonBadLine, "%d fields, header has %d", len(rec), len(header))
			} else {
				err = p.pathAndCaptions(line, rec[img], []string{rec[capt]})
			}
		}
		if err != nil {
			return err
		}
	}
}

// jsonl parses one JSON object per line.
func (p *parser) jsonl(r io.Reader) error {
	return p.lines(r, func(n int, line []byte) error {
		if !utf8.Valid(line) {
			return p.bad(n, ReasonInvalidUTF8, "line is not valid UTF-8")
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			return p.bad(n, ReasonBadLine, "not a JSON object: %v", err)
		}
		pick := func(named string, defaults []string) (string, json.RawMessage) {
			if named != "" {
				return named, obj[named]
			}
			for _, name := range defaults {
				if v, ok := obj[name]; ok {
					return name, v
				}
			}
			return strings.Join(defaults, `" or "`), nil
		}
		imgName, imgRaw := pick(p.imageCol, defaultImageColumns)
		capName, capRaw := pick(p.captionCol, defaultCaptionColumns)
		var path string
		if imgRaw == nil || json.Unmarshal(imgRaw, &path) != nil {
			return p.bad(n, ReasonBadLine, "no string field %s", readable.Quote(imgName))
		}
		var caps []string
		var one string
		switch {
		case capRaw == nil:
			return p.bad(n, ReasonBadLine, "no field %s", readable.Quote(capName))
		case json.Unmarshal(capRaw, &one) == nil:
			caps = []string{one}
		case json.Unmarshal(capRaw, &caps) != nil:
			return p.bad(n, ReasonBadLine, "field %s is neither a string nor a list of strings", readable.Quote(capName))
		}
		return p.pathAndCaptions(n, path, caps)
	})
}

// detectFormat guesses the format of a captions file from its name, else its first line: a
// "{" means JSONL; a first field ending in "#n" means the token format; a tab, TSV; a
// comma, CSV. It peeks at br without consuming anything (br's buffer must hold
// DefaultMaxLineBytes), so the caller parses from the same reader, a stream included.
func detectFormat(name string, br *bufio.Reader) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, nil
	case ".csv":
		return FormatCSV, nil
	}
	first, err := peekFirstLine(br, DefaultMaxLineBytes)
	if err != nil {
		return "", err
	}
	name0, _, hasTab := bytes.Cut(first, []byte("\t"))
	switch {
	case first[0] == '{':
		return FormatJSONL, nil
	case hasTab && flickrName.Match(name0):
		return FormatToken, nil
	case hasTab:
		return FormatTSV, nil
	case bytes.IndexByte(first, ',') >= 0:
		return FormatCSV, nil
	}
	return "", fmt.Errorf("cannot detect the format from the first line %q; set the format", truncate(string(first), 60))
}

// peekFirstLine returns the first line of br that is not blank, without its line ending or a
// leading byte-order mark, looking at no more than limit bytes and consuming none. It reads
// only as far as it must: one more read of the underlying reader per look.
func peekFirstLine(br *bufio.Reader, limit int) ([]byte, error) {
	limit = min(limit, br.Size())
	clean := func(line []byte, atStart bool) []byte {
		if atStart {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		return bytes.TrimRight(line, "\r\n")
	}
	start, pos, want := 0, 0, 1
	for {
		buf, err := br.Peek(want)
		for ; pos < len(buf); pos++ {
			if buf[pos] != '\n' {
				continue
			}
			if line := clean(buf[start:pos], start == 0); len(bytes.TrimSpace(line)) > 0 {
				return bytes.Clone(line), nil
			}
			start = pos + 1
		}
		if err != nil || len(buf) >= limit {
			if line := clean(buf[start:], start == 0); len(bytes.TrimSpace(line)) > 0 {
				return bytes.Clone(line), nil
			}
			if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
				return nil, fmt.Errorf("detecting the format: %w", err)
			}
			return nil, fmt.Errorf("cannot detect the format: no line in the first %d bytes", limit)
		}
		want = min(len(buf)+1, limit)
	}
}

// ctxReader reads r on a goroutine of its own so that a Read blocked on a stream that does
// not deliver returns when ctx ends. The read in flight then stays pending, and its bytes go
// to the next Read: nothing is lost. Not safe for concurrent use.
type ctxReader struct {
	r       io.Reader
	ctx     context.Context
	buf     []byte
	pending chan ctxRead // the read in flight, nil when none
	left    []byte       // bytes read and not yet returned
	err     error        // the error that came with left
}

type ctxRead struct {
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.left) == 0 && c.err == nil {
		if c.pending == nil {
			if c.buf == nil {
				c.buf = make([]byte, 32<<10)
			}
			ch := make(chan ctxRead, 1)
			c.pending = ch
			go func(buf []byte) {
				n, err := c.r.Read(buf)
				ch <- ctxRead{n, err}
			}(c.buf)
		}
		ctx := c.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		select {
		case res := <-c.pending:
			c.pending = nil
			c.left, c.err = c.buf[:res.n], res.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	if len(c.left) == 0 && c.err != nil {
		err := c.err
		c.err = nil
		return n, err
	}
	return n, nil
}
