package ingest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/readable"
)

// Bounds of the webdataset reader, besides Limits.MaxImageBytes (an image member) and
// Limits.MaxLineBytes (a text or JSON member).
const (
	MaxWebDatasetMembers = 64 // members of one sample; more reject the sample
)

// Reasons of the webdataset source.
const (
	ReasonNoImage        = "no_image"         // a sample without an image member
	ReasonMemberLarge    = "member_too_large" // a text or JSON member over Limits.MaxLineBytes
	ReasonTooManyMembers = "too_many_members" // a sample of more than MaxWebDatasetMembers members
)

// WebDatasetSource reads webdataset tar shards; see WebDataset.
type WebDatasetSource struct {
	pattern string
	files   []string
	limits  Limits
}

// WebDataset returns a source of the samples in the tar shards matching glob (plain or
// gzipped, in name order), as open_clip reads and img2dataset writes them: the members of a
// sample are adjacent and share a key, the member's path up to the first dot of its base
// name ("00000/000000042.jpg" has key "00000/000000042" and extension "jpg"). A sample's
// image is its first member with an image extension; its caption is its .txt (else .text,
// .caption) member, else the "caption" (else "text") field of its .json member; a .cls
// member holding an integer becomes its label. Other members are ignored.
//
// Members are read whole into memory, each bounded: an image by Limits.MaxImageBytes, a text
// or JSON member by Limits.MaxLineBytes, a sample by MaxWebDatasetMembers members. A shard
// that fails part-way (truncated, not a tar) is rejected from that point (ReasonBadFile) and
// the scan goes on with the next one.
func WebDataset(glob string) (*WebDatasetSource, error) {
	files, err := inputFiles("webdataset", glob)
	if err != nil {
		return nil, err
	}
	return &WebDatasetSource{pattern: glob, files: files, limits: Limits{}.withDefaults()}, nil
}

// Name returns "webdataset:<glob>".
func (s *WebDatasetSource) Name() string { return "webdataset:" + s.pattern }

// Classes returns nil: .cls labels are kept as numbers without names.
func (s *WebDatasetSource) Classes() []string { return nil }

// Scan yields the samples of each shard in turn.
func (s *WebDatasetSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	var stop error
	yield, reject = stopOnError(&stop, yield), stopOnError(&stop, reject)
	for _, file := range s.files {
		err := s.scanFile(ctx, file, yield, reject)
		switch {
		case err == nil:
		case stop != nil:
			return stop
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			if rerr := reject(Reject{Origin: file, Reason: ReasonBadFile, Detail: err.Error()}); rerr != nil {
				return rerr
			}
		}
	}
	return nil
}

// wdsSample gathers the members of one sample.
type wdsSample struct {
	key      string
	origin   string
	members  int
	image    []byte
	imageExt string
	text     map[string][]byte // txt, text, caption, json, cls
	reject   *Reject           // the first reason the sample is dropped
}

func (s *WebDatasetSource) scanFile(ctx context.Context, file string, yield func(Item) error, reject func(Reject) error) error {
	f, err := fileinput.OpenRegular(file)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		r = gz
	}
	return s.scanTar(ctx, file, r, yield, reject)
}

// scanTar reads one tar stream; its errors are the stream's (the caller rejects the rest of
// the file) or those of yield and reject.
func (s *WebDatasetSource) scanTar(ctx context.Context, file string, r io.Reader, yield func(Item) error, reject func(Reject) error) error {
	tr := tar.NewReader(r)
	base := filepath.Base(file)
	var cur *wdsSample
	flush := func() error {
		if cur == nil {
			return nil
		}
		smp := cur
		cur = nil
		return s.finish(smp, yield, reject)
	}
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // directories, links and the like carry no sample data
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		key, ext := splitWebDatasetName(name)
		if key == "" || strings.HasPrefix(path.Base(name), ".") {
			continue // "__MACOSX"-style hidden files and names without an extension
		}
		if cur == nil || cur.key != key {
			if err := flush(); err != nil {
				return err
			}
			cur = &wdsSample{key: key, origin: base + ":" + key, text: map[string][]byte{}}
		}
		if err := s.addMember(tr, hdr, cur, name, strings.ToLower(ext)); err != nil {
			return err
		}
	}
}

// splitWebDatasetName splits a member path as webdataset does: the key is everything up to
// the first dot of the base name, the extension everything after it.
func splitWebDatasetName(name string) (key, ext string) {
	dir, file := path.Split(name)
	stem, ext, ok := strings.Cut(file, ".")
	if !ok || stem == "" || ext == "" {
		return "", ""
	}
	return dir + stem, ext
}

// addMember reads one member into the sample, within the bounds.
func (s *WebDatasetSource) addMember(tr *tar.Reader, hdr *tar.Header, smp *wdsSample, name, ext string) error {
	if smp.reject != nil {
		return nil
	}
	if smp.members++; smp.members > MaxWebDatasetMembers {
		smp.reject = &Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonTooManyMembers,
			Detail: fmt.Sprintf("more than %d members in one sample", MaxWebDatasetMembers)}
		return nil
	}
	isImage := imageExtensions["."+ext]
	switch {
	case isImage && smp.image != nil, !isImage && !textMember(ext):
		return nil // a second image, or a member clipgo does not use
	case isImage && hdr.Size > s.limits.MaxImageBytes:
		smp.reject = &Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonFileTooLarge,
			Detail: fmt.Sprintf("%s has %d bytes, limit %d", name, hdr.Size, s.limits.MaxImageBytes)}
		return nil
	case !isImage && hdr.Size > int64(s.limits.MaxLineBytes):
		smp.reject = &Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonMemberLarge,
			Detail: fmt.Sprintf("%s has %d bytes, limit %d", name, hdr.Size, s.limits.MaxLineBytes)}
		return nil
	}
	// hdr.Size is bounded above, and the tar reader never returns more than it.
	data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return fmt.Errorf("tar member %s: %w", name, err)
	}
	if isImage {
		smp.image, smp.imageExt = data, ext
	} else if _, dup := smp.text[ext]; !dup {
		smp.text[ext] = data
	}
	return nil
}

// textMember reports whether a member with this extension holds a caption or a label.
func textMember(ext string) bool {
	switch ext {
	case "txt", "text", "caption", "json", "cls":
		return true
	}
	return false
}

// finish yields a complete sample or rejects it.
func (s *WebDatasetSource) finish(smp *wdsSample, yield func(Item) error, reject func(Reject) error) error {
	if smp.reject != nil {
		return reject(*smp.reject)
	}
	if smp.image == nil {
		return reject(Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonNoImage, Detail: "the sample has no image member"})
	}
	raw, where, err := wdsCaption(smp.text)
	if err != nil {
		return reject(Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonBadLine, Detail: err.Error()})
	}
	if where == "" {
		return reject(Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonNoCaption, Detail: "no .txt member and no caption in a .json member"})
	}
	caption, reason, detail := cleanCaption(raw, s.limits.MaxCaptionBytes)
	if reason != "" {
		if err := reject(Reject{Origin: smp.origin + "." + where, Key: smp.key, Reason: reason, Detail: detail}); err != nil {
			return err
		}
		return reject(Reject{Origin: smp.origin, Key: smp.key, Reason: ReasonNoCaption, Detail: "its only caption was rejected"})
	}
	it := Item{Key: smp.key, Captions: []string{caption}, Origin: smp.origin + "." + smp.imageExt}
	if cls, ok := smp.text["cls"]; ok {
		v, err := strconv.ParseInt(strings.TrimSpace(string(cls)), 10, 32)
		if err != nil || v < 0 {
			return reject(Reject{Origin: smp.origin + ".cls", Key: smp.key, Reason: ReasonBadLabel,
				Detail: fmt.Sprintf("label %s is not a non-negative integer", readable.Quote(truncate(string(cls), 30)))})
		}
		it.Label = int32p(int(v))
	}
	img := smp.image
	it.Load = func() ([]byte, error) { return img, nil }
	return yield(it)
}

// wdsCaption picks the caption of a sample and says which member it came from ("" when
// none has one).
func wdsCaption(text map[string][]byte) (caption, member string, err error) {
	for _, ext := range []string{"txt", "text", "caption"} {
		if b, ok := text[ext]; ok {
			return string(b), ext, nil
		}
	}
	b, ok := text["json"]
	if !ok {
		return "", "", nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return "", "", fmt.Errorf(".json member is not a JSON object: %v", err)
	}
	for _, field := range []string{"caption", "text"} {
		raw, ok := obj[field]
		if !ok {
			continue
		}
		var c string
		if err := json.Unmarshal(raw, &c); err != nil {
			return "", "", fmt.Errorf(".json field %s is not a string", readable.Quote(field))
		}
		return c, "json", nil
	}
	return "", "", nil
}
