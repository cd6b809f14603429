// Package shard reads and writes the project's Parquet shards: an img2dataset-compatible
// schema plus a `captions` list, written in small row groups so that readers can stream
// one row group at a time, project columns, shuffle deterministically and split the data
// across ranks and workers. It also reads foreign Parquet (img2dataset output as is,
// Hugging Face style `image` structs) through a column Mapping, and describes any Parquet
// file for `clipgo inspect`.
package shard

// Record is one image with its captions, as stored in a shard row. The column names are
// img2dataset's, so its tools read our shards and we read its output; Captions keeps the
// several captions of one image grouped under one key, Caption is the first of them.
type Record struct {
	Key            string   `parquet:"key,zstd"`
	Caption        string   `parquet:"caption,zstd"`
	Captions       []string `parquet:"captions,list,zstd"`
	JPG            []byte   `parquet:"jpg,uncompressed"` // encoded image (JPEG or PNG bytes)
	Width          int32    `parquet:"width"`
	Height         int32    `parquet:"height"`
	OriginalWidth  int32    `parquet:"original_width"`
	OriginalHeight int32    `parquet:"original_height"`
	SHA256         string   `parquet:"sha256,zstd"`    // hex of the JPG bytes
	Label          *int32   `parquet:"label,optional"` // class index, labelled sets only
	URL            string   `parquet:"url,optional,zstd"`
}

// Column names of Record, for ReadOptions.Columns.
const (
	ColKey            = "key"
	ColCaption        = "caption"
	ColCaptions       = "captions"
	ColJPG            = "jpg"
	ColWidth          = "width"
	ColHeight         = "height"
	ColOriginalWidth  = "original_width"
	ColOriginalHeight = "original_height"
	ColSHA256         = "sha256"
	ColLabel          = "label"
	ColURL            = "url"
)

// AllColumns lists every column of Record in schema order.
var AllColumns = []string{ColKey, ColCaption, ColCaptions, ColJPG, ColWidth, ColHeight,
	ColOriginalWidth, ColOriginalHeight, ColSHA256, ColLabel, ColURL}

// TextColumns is the projection of a text-only pass (a tokenizer), which never reads images.
var TextColumns = []string{ColKey, ColCaption, ColCaptions}

// AllCaptions returns the record's captions: Captions when present, else Caption alone
// (img2dataset files have no captions column).
func (r *Record) AllCaptions() []string {
	if len(r.Captions) > 0 {
		return r.Captions
	}
	if r.Caption != "" {
		return []string{r.Caption}
	}
	return nil
}
