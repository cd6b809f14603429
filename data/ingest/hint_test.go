package ingest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPrepared: raw folders of each kind get the prepare command that reads them.
func TestCheckPrepared(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // the command after "clipgo prepare --out <dir>-prepared "; "" for none
	}{
		{"hf", map[string]string{"metadata.jsonl": "{}", "a.png": ""}, "--source captions --captions DIR"},
		{"hfsplits", map[string]string{"train/metadata.jsonl": "{}", "train/a.png": ""}, ""},
		{"wds", map[string]string{"00000.tar": "", "00001.tar": "", "stats.json": ""}, "--source webdataset --input 'DIR/*.tar'"},
		{"pq", map[string]string{"part-0.parquet": ""}, "--source parquet --input 'DIR/*.parquet'"},
		{"mnist", map[string]string{"train-images-idx3-ubyte.gz": "", "train-labels-idx1-ubyte.gz": ""},
			"--source idx --idx-images DIR/train-images-idx3-ubyte.gz --idx-labels DIR/train-labels-idx1-ubyte.gz"},
		{"flickr", map[string]string{"Flickr8k.token.txt": "", "Flicker8k_Dataset/1.jpg": "", "readme/": ""},
			"--source captions --captions DIR/Flickr8k.token.txt --images DIR/Flicker8k_Dataset"},
		{"classes", map[string]string{"cat/1.jpg": "", "dog/2.png": ""}, "--source imagefolder --root DIR"},
		{"loose", map[string]string{"1.jpg": "", "notes.txt": ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(base, tc.name)
			writeTree(t, dir, tc.files)
			err := CheckPrepared(dir)
			if !errors.Is(err, ErrNotPrepared) || !strings.Contains(err.Error(), "run clipgo prepare first") {
				t.Fatalf("error %v", err)
			}
			got := PrepareCommand(dir)
			want := ""
			switch {
			case tc.name == "hfsplits":
				want = "clipgo prepare --out " + filepath.Join(dir+"-prepared", "train") + " --source captions --captions " + filepath.Join(dir, "train")
			case tc.want != "":
				want = "clipgo prepare --out " + dir + "-prepared " + strings.ReplaceAll(tc.want, "DIR", dir)
			}
			if got != want {
				t.Errorf("command\n%s\nwant\n%s", got, want)
			}
			if want != "" && !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not give the command: %v", err)
			}
		})
	}
	prepared := filepath.Join(base, "prepared")
	writeTree(t, prepared, map[string]string{"manifest.json": "{}"})
	if err := CheckPrepared(prepared); err != nil {
		t.Errorf("a dataset directory: %v", err)
	}
	if err := CheckPrepared(filepath.Join(base, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing directory: %v", err)
	}
}
