package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotPrepared is wrapped by CheckPrepared's error: a directory that is not a prepared
// dataset where one is needed.
var ErrNotPrepared = errors.New("not a prepared dataset")

// manifestName is data/shard's ManifestName, repeated so that this check needs no Parquet.
const manifestName = "manifest.json"

// maxHintEntries bounds the directory entries PrepareCommand looks at.
const maxHintEntries = 10_000

// CheckPrepared returns nil when dir holds a prepared dataset (a manifest.json), and
// otherwise an error wrapping ErrNotPrepared that says to run `clipgo prepare` first, with
// the command that fits what dir holds when PrepareCommand can tell. Commands that read a
// dataset call it before loading a model, so that raw data fails fast and says what to do.
func CheckPrepared(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, manifestName)); err == nil {
		return nil
	}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("data %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("data %s: %w: a prepared dataset is a directory made by clipgo prepare", dir, ErrNotPrepared)
	}
	if cmd := PrepareCommand(dir); cmd != "" {
		return fmt.Errorf("data %s: %w (no %s): run clipgo prepare first:\n  %s", dir, ErrNotPrepared, manifestName, cmd)
	}
	return fmt.Errorf("data %s: %w (no %s): run clipgo prepare first (clipgo prepare --help lists the sources it reads)",
		dir, ErrNotPrepared, manifestName)
}

// PrepareCommand guesses the `clipgo prepare` command that turns the raw data in dir into a
// dataset in dir + "-prepared", from the names of what dir holds: a Hugging Face imagefolder
// (metadata.jsonl), webdataset tar shards, Parquet files, MNIST-style IDX files, a captions
// file beside an image folder (Flickr8k's layout), or one folder of images per class. It
// returns "" when it cannot tell.
func PrepareCommand(dir string) string {
	dir = filepath.Clean(dir)
	out := shellQuote(dir + "-prepared")
	entries := listDir(dir)
	var files, dirs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		} else {
			files = append(files, e.Name())
		}
	}
	has := func(match func(string) bool) string {
		for _, f := range files {
			if match(f) {
				return f
			}
		}
		return ""
	}
	lower := func(suffixes ...string) func(string) bool {
		return func(name string) bool {
			for _, s := range suffixes {
				if strings.HasSuffix(strings.ToLower(name), s) {
					return true
				}
			}
			return false
		}
	}
	prepare := "clipgo prepare --out " + out + " "
	for _, name := range MetadataNames {
		if slices.Contains(files, name) {
			return prepare + "--source captions --captions " + shellQuote(dir)
		}
	}
	for _, d := range dirs { // a Hugging Face imagefolder with train/validation/test folders
		for _, name := range MetadataNames {
			if _, err := os.Stat(filepath.Join(dir, d, name)); err == nil {
				return "clipgo prepare --out " + shellQuote(filepath.Join(dir+"-prepared", d)) +
					" --source captions --captions " + shellQuote(filepath.Join(dir, d))
			}
		}
	}
	if f := has(lower(".tar", ".tar.gz", ".tgz")); f != "" {
		return prepare + "--source webdataset --input " + shellQuote(filepath.Join(dir, "*"+tarExt(f)))
	}
	if has(lower(".parquet")) != "" {
		return prepare + "--source parquet --input " + shellQuote(filepath.Join(dir, "*.parquet"))
	}
	if img := has(lower("idx3-ubyte", "idx3-ubyte.gz")); img != "" {
		if lbl := has(lower("idx1-ubyte", "idx1-ubyte.gz")); lbl != "" {
			return prepare + "--source idx --idx-images " + shellQuote(filepath.Join(dir, img)) +
				" --idx-labels " + shellQuote(filepath.Join(dir, lbl))
		}
	}
	if caps := has(lower(".token", ".token.txt", ".tsv", ".csv", ".jsonl")); caps != "" {
		images := dir
		for _, d := range dirs {
			if holdsImages(filepath.Join(dir, d)) {
				images = filepath.Join(dir, d)
				break
			}
		}
		return prepare + "--source captions --captions " + shellQuote(filepath.Join(dir, caps)) + " --images " + shellQuote(images)
	}
	classes := 0
	for _, d := range dirs {
		if holdsImages(filepath.Join(dir, d)) {
			classes++
		}
	}
	if classes > 0 && classes == len(dirs) {
		return prepare + "--source imagefolder --root " + shellQuote(dir)
	}
	return ""
}

// listDir returns up to maxHintEntries entries of dir, nil when it cannot be read.
func listDir(dir string) []os.DirEntry {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, _ := f.ReadDir(maxHintEntries)
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries
}

// holdsImages reports whether one of the first entries of dir is an image file.
func holdsImages(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(64)
	return slices.ContainsFunc(names, IsImageFile)
}

// tarExt returns the tar extension of name: ".tar", ".tar.gz" or ".tgz".
func tarExt(name string) string {
	for _, ext := range []string{".tar.gz", ".tgz"} {
		if strings.HasSuffix(strings.ToLower(name), ext) {
			return name[len(name)-len(ext):]
		}
	}
	return name[len(name)-len(".tar"):]
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=+,:@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
