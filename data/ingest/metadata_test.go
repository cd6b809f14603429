package ingest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHuggingFaceImageFolder: a Hugging Face imagefolder (metadata.jsonl with file_name and
// text, or metadata.csv) is read when --captions names its directory or its metadata file.
func TestHuggingFaceImageFolder(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"train/metadata.jsonl": `{"file_name": "0001.png", "text": "a red square"}` + "\n" +
			`{"file_name": "sub/0002.jpg", "text": "a blue circle", "extra": 3}` + "\n",
		"train/0001.png": "P", "train/sub/0002.jpg": "J",
		"val/metadata.csv": "file_name,text\n0003.png,\"a green, small triangle\"\n",
		"val/0003.png":     "T",
		"empty/":           "",
	})
	for _, tc := range []struct{ file, want string }{
		{"train", "0001: a red square,sub/0002: a blue circle"},
		{"train/metadata.jsonl", "0001: a red square,sub/0002: a blue circle"},
		{"val", "0003: a green, small triangle"},
	} {
		src, err := Captions(CaptionsOptions{File: filepath.Join(base, tc.file)})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got, err := scanAll(t, src)
		if err != nil || len(got.rejects) != 0 {
			t.Fatalf("%s: %v, rejects %v", tc.file, err, got.reasons())
		}
		if k := strings.Join(got.keys(), ","); k != tc.want {
			t.Errorf("%s: items %s, want %s", tc.file, k, tc.want)
		}
	}
	_, err := Captions(CaptionsOptions{File: filepath.Join(base, "empty")})
	if err == nil || !strings.Contains(err.Error(), "metadata.jsonl") {
		t.Errorf("a directory without metadata: %v", err)
	}
	if !slices.Contains(MetadataNames, "metadata.jsonl") {
		t.Error("MetadataNames lacks metadata.jsonl")
	}
}
