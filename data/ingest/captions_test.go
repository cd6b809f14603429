package ingest

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/clipgo/clipgo/internal/testenv"
)

// captionImages is the images root every captions test case reads.
var captionImages = map[string]string{
	"outside.jpg":                 "secret",
	"images/a.jpg":                "A",
	"images/b.jpg":                "B",
	"images/c.png":                "C",
	"images/a.png":                "Apng",
	"images/sub/d.jpg":            "D",
	"images/dir.jpg/":             "",
	"images/big.jpg":              strings.Repeat("x", 100),
	"images/escape.jpg":           "->../outside.jpg",
	"images/sub/up.jpg":           "->../a.jpg",
	"images/name with spaces.jpg": "S",
}

func TestCaptions(t *testing.T) {
	small := Limits{MaxImageBytes: 50, MaxLineBytes: 64, MaxCaptionBytes: 24, MaxCaptionsPerImage: 3}
	for _, tc := range []struct {
		name, file, format, content string
		imageCol, captionCol        string
		limits                      Limits
		items, rejects              []string
	}{{
		name: "token grouped in file order", file: "c.token",
		content: "a.jpg#0\tA dog .\nb.jpg#0\tcat\r\na.jpg#1\t  A  dog\truns \n\n" +
			"sub/d.jpg#0\td\nsub/../c.png#3\tc\n./b.jpg#1\tcat 2",
		items: []string{"a: A dog . | A dog runs", "b: cat | cat 2", "sub/d: d", "c: c"},
	}, {
		name: "token without caption numbers, keys keep paths apart", file: "c.txt", format: FormatToken,
		content: "a.jpg\tone\na.png\ttwo\nsub/up.jpg\tthree\nname with spaces.jpg\tfour",
		items:   []string{"a: one", "a: two", "sub/up: three", "name with spaces: four"},
	}, {
		name: "token image rejects", file: "c.token",
		content: "missing.jpg#0\tx\n../outside.jpg#0\tx\n/etc/passwd#0\tx\nescape.jpg#0\tx\n" +
			"dir.jpg#0\tx\nbig.jpg#0\tx\na.jpg#0\tok\nmissing.jpg#1\tagain",
		limits: small,
		items:  []string{"a: ok"},
		rejects: []string{"c.token:1 missing_file", "c.token:2 path_escape", "c.token:3 path_escape",
			"c.token:4 path_escape", "c.token:5 not_a_file", "c.token:6 file_too_large"},
	}, {
		name: "token caption and line rejects", file: "c.token", limits: small,
		content: "a.jpg#0\t   \na.jpg#1\tgood\nb.jpg#0\t\t\nc.png#0\t\xff\xfe\n\xffz.jpg#0\tx\n" +
			"no tab here\na.jpg#2\tthis caption is far too long\n" + strings.Repeat("L", 80) + "\n" +
			"a.jpg#3\ttwo\na.jpg#4\tthree\na.jpg#5\tfour\n\t\tempty path\n",
		items: []string{"a: good | two | three"},
		rejects: []string{"c.token:1 empty_caption", "c.token:3 empty_caption", "c.token:4 invalid_utf8",
			"c.token:5 invalid_utf8", "c.token:6 bad_line", "c.token:7 caption_too_long", "c.token:8 line_too_long",
			"c.token:11 too_many_captions", "c.token:12 bad_line",
			"c.token:3 no_caption", "c.token:4 no_caption"},
	}, {
		name: "csv open_clip columns, quoting, BOM", file: "c.csv",
		content: "\xef\xbb\xbfid,filepath,title\n1,a.jpg,\"a dog, running\"\n2,b.jpg,\"two\nlines\"\n" +
			"3,a.jpg,\"said \"\"hi\"\"\"\n",
		items: []string{"a: a dog, running | said \"hi\"", "b: two lines"},
	}, {
		name: "csv plain columns and rejects", file: "c.csv",
		content: "caption,image\nfine,a.jpg\ntoo,many,fields\nbare \"quote,b.jpg\n,c.png\nok,../outside.jpg\n",
		items:   []string{"a: fine"},
		rejects: []string{"c.csv:3 bad_line", "c.csv:4 bad_line", "c.csv:5 empty_caption", "c.csv:5 no_caption", "c.csv:6 path_escape"},
	}, {
		name: "csv named columns override defaults", file: "c.csv", imageCol: "img", captionCol: "text",
		content: "filepath,title,img,text\nb.jpg,wrong,a.jpg,right\n",
		items:   []string{"a: right"},
	}, {
		name: "tsv header", file: "c.tsv",
		content: "filepath\ttitle\na.jpg\tx y\nb.jpg\n\"c.png\"\tquoted path\nsub/d.jpg\t d \n",
		items:   []string{"a: x y", "sub/d: d"},
		rejects: []string{"c.tsv:3 bad_line", "c.tsv:4 missing_file"},
	}, {
		name: "jsonl", file: "c.jsonl",
		content: `{"image": "a.jpg", "caption": "one"}` + "\n" +
			`{"filepath": "b.jpg", "title": "two", "image": "ignored.jpg", "caption": "ignored"}` + "\n" +
			`{"image": "c.png", "caption": ["three", "four", " "]}` + "\n" +
			`not json` + "\n" + `{"image": 7, "caption": "x"}` + "\n" + `{"image": "a.jpg"}` + "\n" +
			`{"image": "a.jpg", "caption": [1]}` + "\n" + "{\"image\": \"a.jpg\", \"caption\": \"\xff\"}\n" +
			`{"image": "a.jpg", "caption": "esc\u00e9 \ud83d\ude00"}` + "\n" + `["a.jpg", "x"]`,
		items: []string{"a: one | esc\u00e9 \U0001F600", "b: two", "c: three | four"},
		rejects: []string{"c.jsonl:3 empty_caption", "c.jsonl:4 bad_line", "c.jsonl:5 bad_line", "c.jsonl:6 bad_line",
			"c.jsonl:7 bad_line", "c.jsonl:8 invalid_utf8", "c.jsonl:10 bad_line"},
	}, {
		name: "jsonl named fields", file: "c.jsonl", imageCol: "path", captionCol: "text",
		content: `{"path": "a.jpg", "text": "yes", "image": "b.jpg", "caption": "no"}` + "\n" + `{"image": "b.jpg", "caption": "no"}`,
		items:   []string{"a: yes"},
		rejects: []string{"c.jsonl:2 bad_line"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			writeTree(t, base, captionImages)
			file := filepath.Join(base, tc.file)
			writeTree(t, base, map[string]string{tc.file: tc.content})
			src, err := Captions(CaptionsOptions{File: file, Images: filepath.Join(base, "images"), Format: tc.format,
				ImageColumn: tc.imageCol, CaptionColumn: tc.captionCol, Limits: tc.limits})
			if err != nil {
				t.Fatal(err)
			}
			r, err := scanAll(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.keys(); !slices.Equal(got, tc.items) {
				t.Errorf("items\n  %q\nwant\n  %q", got, tc.items)
			}
			if got := r.reasons(); !slices.Equal(got, tc.rejects) {
				t.Errorf("rejects\n  %q\nwant\n  %q\n%v", got, tc.rejects, r.rejects)
			}
			for _, rj := range r.rejects {
				if rj.Detail == "" {
					t.Errorf("reject %v has no detail", rj)
				}
			}
			for _, it := range r.items {
				data, err := it.Load()
				if err != nil || len(data) == 0 || it.Label != nil || it.Image != nil || it.Split != "" {
					t.Errorf("item %s: Load %q, %v; %+v", it.Key, data, err, it)
				}
			}
		})
	}
}

func TestCaptionsFatal(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, imageCol string
		limits                        Limits
		want                          string
	}{
		{name: "csv without the columns", file: "c.csv", content: "path,text\na.jpg,x\n", want: `no image column "filepath" or "image"`},
		{name: "tsv without caption column", file: "c.tsv", content: "image\tcomment\na.jpg\tx\n", want: `no caption column "title" or "caption"`},
		{name: "named column missing", file: "c.csv", content: "image,caption\n", imageCol: "img", want: `no image column "img"`},
		{name: "csv record too long", file: "c.csv", limits: Limits{MaxLineBytes: 16},
			content: "image,caption\na.jpg,\"" + strings.Repeat("long\n", 5000) + "\"\n", want: "longer than 16 bytes"},
		{name: "csv empty", file: "c.csv", content: "", want: "no header"},
		{name: "csv bad header", file: "c.csv", content: "image,\"cap\n", want: "header"},
		{name: "too many records", file: "c.token", limits: Limits{MaxRecords: 2}, content: "a.jpg#0\tx\na.jpg#1\ty\na.jpg#2\tz\n", want: "more than 2 records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			writeTree(t, base, map[string]string{tc.file: tc.content, "a.jpg": "A"})
			src, err := Captions(CaptionsOptions{File: filepath.Join(base, tc.file), ImageColumn: tc.imageCol, Limits: tc.limits})
			if err == nil {
				_, err = scanAll(t, src)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := Captions(CaptionsOptions{File: "x.csv", Images: t.TempDir(), Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
	if _, err := Captions(CaptionsOptions{File: filepath.Join(t.TempDir(), "none.tsv")}); err == nil {
		t.Error("missing captions file accepted")
	}
}

func TestDetectFormat(t *testing.T) {
	for _, tc := range []struct{ name, first, want string }{
		{"captions.tsv", "1000268201_693b08cb0e.jpg#0\tA child .", FormatToken},
		{"results_20130124.token", "\n\n1000092795.jpg#0\tTwo young guys", FormatToken},
		{"x.tsv", "filepath\ttitle", FormatTSV},
		{"x.txt", "\xef\xbb\xbf{\"image\": \"a\"}", FormatJSONL},
		{"x.csv", "anything", FormatCSV},
		{"x.JSONL", "", FormatJSONL},
		{"x.dat", "image,caption", FormatCSV},
		{"x.dat", "just words", ""},
		{"x.dat", "", ""},
	} {
		got, err := detectFormat(tc.name, bufio.NewReaderSize(strings.NewReader(tc.first), streamBufferSize))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("detectFormat(%q, %q) = %q, %v; want %q", tc.name, tc.first, got, err, tc.want)
		}
	}
}

// TestFlickr8k reads the shared Flickr8k training captions: 6,000 images with five captions each.
func TestFlickr8k(t *testing.T) {
	file := testenv.SharedFile(t, "data/flickr8k/captions.tsv")
	images := testenv.SharedFile(t, "data/flickr8k/images")
	src, err := Captions(CaptionsOptions{File: file, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	if src.Format() != FormatToken {
		t.Errorf("format %q, want token", src.Format())
	}
	r, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	captions := 0
	keys := map[string]bool{}
	for _, it := range r.items {
		captions += len(it.Captions)
		keys[it.Key] = true
		if len(it.Captions) != 5 {
			t.Errorf("%s has %d captions", it.Key, len(it.Captions))
		}
	}
	t.Logf("%d images, %d captions, %d rejects", len(r.items), captions, len(r.rejects))
	if len(r.items) != 6000 || len(keys) != 6000 || captions != 30000 || len(r.rejects) != 0 {
		t.Errorf("%d items (%d keys), %d captions, rejects %v; want 6000, 30000, none", len(r.items), len(keys), captions, r.rejects)
	}
	if len(r.items) > 0 {
		data, err := r.items[0].Load()
		if err != nil || !bytes.HasPrefix(data, []byte("\xff\xd8")) {
			t.Errorf("first image: %d bytes, %v; want a JPEG", len(data), err)
		}
	}
}

// FuzzCaptions parses arbitrary bytes in every format and checks what comes out.
func FuzzCaptions(f *testing.F) {
	for _, seed := range []struct {
		format  uint8
		content string
	}{
		{0, "a.jpg#0\tA dog .\na.jpg#1\tcat\n\xff#0\tx\n../a.jpg#0\ty"},
		{1, "filepath,title\na.jpg,\"x, y\"\nb.jpg,\"\n\"\n\"bad"},
		{2, "image\tcaption\na.jpg\tx\nsub/d.jpg\t\xff\n"},
		{3, "{\"image\":\"a.jpg\",\"caption\":[\"x\",\"y\"]}\n{\"image\":\"/etc/passwd\",\"caption\":\"z\"}\n[]"},
		{0, strings.Repeat("a", 300) + "\nb.jpg#0\t" + strings.Repeat("long ", 40)},
	} {
		f.Add(seed.format, []byte(seed.content))
	}
	base := f.TempDir()
	writeTree(f, base, map[string]string{"a.jpg": "A", "b.jpg": "B", "sub/d.jpg": "D", "dir.jpg/": "", "out.jpg": "->/etc/hostname", "fuzz.txt": ""})
	formats := []string{FormatToken, FormatCSV, FormatTSV, FormatJSONL}
	lim := Limits{MaxLineBytes: 128, MaxCaptionBytes: 64, MaxCaptionsPerImage: 4, MaxRecords: 200}
	f.Fuzz(func(t *testing.T, format uint8, data []byte) {
		src, err := Captions(CaptionsOptions{File: filepath.Join(base, "fuzz.txt"), Images: base,
			Format: formats[int(format)%len(formats)], Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		err = src.scan(context.Background(), bytes.NewReader(data), func(it Item) error {
			if it.Key == "" || len(it.Captions) == 0 || len(it.Captions) > lim.MaxCaptionsPerImage || it.Load == nil {
				t.Fatalf("bad item %+v", it)
			}
			for _, c := range it.Captions {
				if c == "" || len(c) > lim.MaxCaptionBytes || !utf8.ValidString(c) || strings.TrimSpace(c) != c {
					t.Fatalf("item %s: bad caption %q", it.Key, c)
				}
			}
			if _, err := it.Load(); err != nil {
				t.Fatalf("item %s passed the checks but Load fails: %v", it.Key, err)
			}
			return nil
		}, func(rj Reject) error {
			if !knownReason[rj.Reason] || rj.Origin == "" || rj.Detail == "" {
				t.Fatalf("bad reject %+v", rj)
			}
			return nil
		})
		_ = err // a fatal error is a valid outcome; a panic or a bad item is not
	})
}

var knownReason = map[string]bool{
	ReasonMissingFile: true, ReasonPathEscape: true, ReasonNotAFile: true, ReasonFileTooLarge: true,
	ReasonUnsupportedType: true, ReasonNoCaption: true, ReasonBadLabel: true, ReasonEmptyCaption: true,
	ReasonInvalidUTF8: true, ReasonCaptionTooLong: true, ReasonTooManyCaptions: true, ReasonBadLine: true,
	ReasonLineTooLong: true,
}

// TestCaptionsOrigin checks that the default images root is the captions file's directory and
// that origins name the file and line.
func TestCaptionsOrigin(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{"caps.tsv": "\n\nb.jpg#0\tx\n", "b.jpg": "B"})
	src, err := Captions(CaptionsOptions{File: filepath.Join(base, "caps.tsv")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := scanAll(t, src)
	if err != nil || len(r.items) != 1 || r.items[0].Origin != "caps.tsv:3" {
		t.Fatalf("items %+v, err %v", r.items, err)
	}
	if !strings.Contains(src.Name(), "caps.tsv") {
		t.Errorf("Name() = %q", src.Name())
	}
	if err := os.Remove(filepath.Join(base, "caps.tsv")); err != nil {
		t.Fatal(err)
	}
	if _, err := scanAll(t, src); err == nil || !strings.Contains(err.Error(), "caps.tsv") {
		t.Errorf("Scan of a removed file: %v", err)
	}
}
