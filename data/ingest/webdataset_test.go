package ingest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// member is one tar entry: a name ending in "/" is a directory.
type member struct{ name, body string }

func tarBytes(t testing.TB, members ...member) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(m.name, "/") {
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestWebDataset reads shards as img2dataset writes them (plain, gzipped, one truncated) and
// checks every item and reject.
func TestWebDataset(t *testing.T) {
	dir := t.TempDir()
	img := string(pngBytes(t, 3))
	shard0 := tarBytes(t,
		member{"00000/", ""},
		member{"00000/000.jpg", img}, member{"00000/000.txt", " a  cat\n"},
		member{"00000/001.png", img}, member{"00000/001.json", `{"caption": "a dog", "url": "http://x/1.png"}`},
		member{"00000/002.jpg", img},
		member{"00000/003.txt", "no picture"},
		member{"00000/004.cls", "3"}, member{"00000/004.jpg", img}, member{"00000/004.txt", "a three"},
		member{"00000/._005.jpg", "resource fork"},
		member{"00000/005.seg.png", img}, member{"00000/005.txt", "segmented"}, member{"00000/005.webp", img},
		member{"00000/006.jpg", img}, member{"00000/006.txt", strings.Repeat("long ", 100)},
		member{"00000/007.jpg", img}, member{"00000/007.json", `{"text": 7}`},
		member{"00000/008.jpg", img}, member{"00000/008.cls", "dog"}, member{"00000/008.txt", "labelled"},
		member{"00000/009.jpg", strings.Repeat("x", 3000)}, member{"00000/009.txt", "too big"},
	)
	shard1 := gzipBytes(t, tarBytes(t, member{"100.jpg", img}, member{"100.text", "gzipped"}))
	full := tarBytes(t, member{"200.jpg", img}, member{"200.txt", "before the cut"}, member{"201.jpg", img}, member{"201.txt", "cut"})
	shard2 := full[:1024+len(img)+512+600] // into 201.jpg's body
	for name, b := range map[string][]byte{"s-0.tar": shard0, "s-1.tar.gz": shard1, "s-2.tar": shard2} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := WebDataset(filepath.Join(dir, "s-*"))
	if err != nil {
		t.Fatal(err)
	}
	src.limits.MaxCaptionBytes = 100
	src.limits.MaxImageBytes = 2000
	got, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	wantItems := []string{"00000/000: a cat", "00000/001: a dog", "00000/004: a three", "00000/005: segmented", "100: gzipped", "200: before the cut"}
	if k := got.keys(); !slices.Equal(k, wantItems) {
		t.Errorf("items\n%s\nwant\n%s", strings.Join(k, "\n"), strings.Join(wantItems, "\n"))
	}
	for _, it := range got.items {
		if b, err := it.Load(); err != nil || string(b) != img {
			t.Errorf("%s: Load %d bytes, %v", it.Key, len(b), err)
		}
		if it.Key == "00000/004" && (it.Label == nil || *it.Label != 3) {
			t.Errorf("%s: label %v, want 3", it.Key, it.Label)
		}
	}
	var rejects []string
	for _, r := range got.rejects {
		rejects = append(rejects, r.Key+" "+r.Reason)
	}
	wantRejects := []string{"00000/002 no_caption", "00000/003 no_image", "00000/006 caption_too_long", "00000/006 no_caption",
		"00000/007 bad_line", "00000/008 bad_label", "00000/009 file_too_large", " bad_file"}
	if !slices.Equal(rejects, wantRejects) {
		t.Errorf("rejects\n%s\nwant\n%s", strings.Join(rejects, "\n"), strings.Join(wantRejects, "\n"))
	}
}

// TestWebDatasetMemberBounds: an over-long text member and a sample of too many members
// are rejected without being read whole.
func TestWebDatasetMemberBounds(t *testing.T) {
	img := string(pngBytes(t, 4))
	members := []member{{"a.jpg", img}, {"a.txt", strings.Repeat("w", 200)}}
	members = append(members, member{"b.jpg", img}, member{"b.txt", "ok"})
	for i := range MaxWebDatasetMembers {
		members = append(members, member{"b.x" + strings.Repeat("y", i), "-"})
	}
	src := &WebDatasetSource{limits: Limits{MaxLineBytes: 100}.withDefaults()}
	var got result
	err := src.scanTar(context.Background(), "t.tar", bytes.NewReader(tarBytes(t, members...)),
		func(it Item) error { got.items = append(got.items, it); return nil },
		func(r Reject) error { got.rejects = append(got.rejects, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var rejects []string
	for _, r := range got.rejects {
		rejects = append(rejects, r.Key+" "+r.Reason)
	}
	if want := []string{"a member_too_large", "b too_many_members"}; len(got.items) != 0 || !slices.Equal(rejects, want) {
		t.Errorf("items %v rejects %v, want none and %v", got.keys(), rejects, want)
	}
}

func FuzzWebDataset(f *testing.F) {
	img := "\x89PNG fake: Load hands the bytes on undecoded" // small seeds minimise fast
	valid := tarBytes(f, member{"d/", ""}, member{"d/1.jpg", img}, member{"d/1.txt", "one"},
		member{"2.png", img}, member{"2.json", `{"caption":"two"}`}, member{"2.cls", "4"})
	f.Add(valid)
	f.Add(valid[:700])
	f.Add(gzipBytes(f, valid))
	f.Add([]byte("not a tar at all"))
	lim := Limits{MaxImageBytes: 4096, MaxLineBytes: 256, MaxCaptionBytes: 64}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &WebDatasetSource{limits: lim}
		_ = src.scanTar(context.Background(), "fuzz.tar", bytes.NewReader(data), func(it Item) error {
			b, err := it.Load()
			switch {
			case err != nil || int64(len(b)) > lim.MaxImageBytes || len(b) == 0 && it.Origin == "":
				t.Fatalf("item %s: %d image bytes, %v", it.Key, len(b), err)
			case it.Key == "" || len(it.Captions) != 1:
				t.Fatalf("bad item %+v", it)
			}
			if c := it.Captions[0]; c == "" || len(c) > lim.MaxCaptionBytes || !utf8.ValidString(c) {
				t.Fatalf("item %s: bad caption %q", it.Key, c)
			}
			return nil
		}, func(r Reject) error {
			if r.Reason == "" || r.Origin == "" {
				t.Fatalf("bad reject %+v", r)
			}
			return nil
		})
	})
}

// FuzzDownloadLog: any bytes read as a download log give valid entries or skipped lines,
// never an error but the entry bound.
func FuzzDownloadLog(f *testing.F) {
	f.Add([]byte(`{"url":"http://a/1.jpg","key":"000000000","status":"success","file":"ab/abc","bytes":10}` + "\n" +
		`{"url":"http://a/2.jpg","key":"000000001","status":"failed_to_download","error_message":"HTTP 404","reason":"download_http_status"}` + "\n"))
	f.Add([]byte(`{"url":"http://a/1.jpg","status":"success"}` + "\n{\"url\":\"x\",\"status\":\"fai"))
	f.Add([]byte("\xff\xfe\n\n[]\n" + strings.Repeat("z", MaxDownloadLogLine+10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := parseDownloadLog(bytes.NewReader(data), 8)
		if err != nil {
			if !strings.Contains(err.Error(), "more than 8 URLs") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for u, e := range entries {
			if u != e.URL || !e.valid() {
				t.Fatalf("entry %q: %+v", u, e)
			}
		}
	})
}

// TestDownloadLogTornLine: a line torn by an interruption costs only its own URL, not the
// entry appended after it.
func TestDownloadLogTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), DownloadLogName)
	if err := os.WriteFile(path, []byte(`{"url":"http://a/1","key":"0","status":"failed_to_download"}`+"\n"+`{"url":"http://a/2","st`), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := openDownloadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := log.add(DownloadEntry{URL: "http://a/3", Key: "2", Status: StatusSuccess, File: "ab/c"}); err != nil {
		t.Fatal(err)
	}
	log.close()
	entries, torn, err := readDownloadLog(path, 10)
	if err != nil || torn != 1 || len(entries) != 2 || entries["http://a/3"].File != "ab/c" {
		t.Errorf("entries %v, %d torn, %v; want 1 and 3 read, 2 torn", entries, torn, err)
	}
}
