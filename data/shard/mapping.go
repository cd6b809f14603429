package shard

import (
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Mapping names the columns of a foreign Parquet file that hold a Record's fields. A dotted
// name addresses a nested column ("image.bytes"); an empty name means the file lacks that
// field: Key is then synthesised as "<file base name>/<row in file>", Captions falls back
// to [Caption], and Label stays nil. The remaining Record columns (width, height,
// original_width, original_height, sha256, url) are read under their own names when present.
type Mapping struct {
	Key             string // string column; "" synthesises a key
	Caption         string // string column
	Captions        string // list of strings; "" uses [Caption]
	Image           string // binary column, or a struct column holding ImageBytesField
	ImageBytesField string // binary field inside the Image struct (Hugging Face: "bytes")
	Label           string // int32 or int64 column
}

// NativeMapping is the mapping of our own shards and of img2dataset output.
var NativeMapping = Mapping{Key: ColKey, Caption: ColCaption, Captions: ColCaptions, Image: ColJPG, Label: ColLabel}

// Candidate column names tried by DetectMapping, in order of preference.
var (
	captionNames = []string{"caption", "text", "txt", "TEXT", "sentence"}
	imageNames   = []string{"jpg", "image", "img", "png", "jpeg", "webp"}
)

// DetectMapping guesses the mapping of a file's schema: our shards and img2dataset files
// map to themselves; Hugging Face datasets (`image` struct {bytes, path}, `text` or
// `caption`) map their image bytes and caption. Fields it cannot find are left empty.
func DetectMapping(schema *parquet.Schema) Mapping {
	root := schema.Fields()
	has := func(name string) parquet.Field {
		for _, f := range root {
			if f.Name() == name {
				return f
			}
		}
		return nil
	}
	var m Mapping
	if f := has(ColKey); f != nil && f.Leaf() {
		m.Key = ColKey
	}
	for _, n := range captionNames {
		if f := has(n); f != nil && f.Leaf() && !f.Repeated() {
			m.Caption = n
			break
		}
	}
	if f := has(ColCaptions); f != nil {
		m.Captions = ColCaptions
	}
	for _, n := range imageNames {
		f := has(n)
		if f == nil {
			continue
		}
		if f.Leaf() {
			m.Image = n
			break
		}
		for _, sub := range f.Fields() {
			if sub.Name() == "bytes" && sub.Leaf() {
				m.Image, m.ImageBytesField = n, "bytes"
				break
			}
		}
		if m.Image != "" {
			break
		}
	}
	if f := has(ColLabel); f != nil && f.Leaf() {
		m.Label = ColLabel
	}
	return m
}

// imagePath is the dotted path of the image bytes column.
func (m Mapping) imagePath() string {
	if m.Image == "" || m.ImageBytesField == "" {
		return m.Image
	}
	return m.Image + "." + m.ImageBytesField
}

// String formats the mapping as field=column pairs.
func (m Mapping) String() string {
	return fmt.Sprintf("key=%q caption=%q captions=%q image=%q label=%q",
		m.Key, m.Caption, m.Captions, m.imagePath(), m.Label)
}

// lookupColumn finds the column at a dotted path; a group with a single child chain (a
// LIST's list.element) resolves to its leaf.
func lookupColumn(root *parquet.Column, path string) *parquet.Column {
	c := root
	for _, name := range strings.Split(path, ".") {
		if c = c.Column(name); c == nil {
			return nil
		}
	}
	for !c.Leaf() {
		children := c.Columns()
		if len(children) != 1 {
			return c
		}
		c = children[0]
	}
	return c
}
