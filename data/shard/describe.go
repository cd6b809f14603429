package shard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// Info describes a Parquet file or a dataset directory, for `clipgo inspect`.
type Info struct {
	Path              string
	Manifest          *Manifest // dataset directories with a manifest.json
	Files             []FileInfo
	Rows              int64
	RowGroups         int
	CompressedBytes   int64
	UncompressedBytes int64
}

// FileInfo describes one Parquet file.
type FileInfo struct {
	Path              string
	Schema            string // parquet-go's text form of the schema
	Mapping           Mapping
	Rows              int64
	RowGroups         int
	CompressedBytes   int64 // column chunks, summed over row groups
	UncompressedBytes int64
	Columns           []ColumnInfo
	Samples           []map[string]string // first rows, column path -> shown value
}

// ColumnInfo describes one leaf column of a file, summed over its row groups.
type ColumnInfo struct {
	Path              string
	Type              string
	Compression       string
	CompressedBytes   int64
	UncompressedBytes int64
}

// ShownBytes is the longest binary value Describe shows in full; longer values are shown as
// their size and a sha256 prefix. Text (valid UTF-8 without control bytes) is shown up to
// ShownTextBytes, then cut with an ellipsis and its size.
const (
	ShownBytes     = 64
	ShownTextBytes = 240
)

// Describe describes path: a Parquet file, or a directory holding manifest.json and/or
// .parquet files (searched recursively), with sampleRows sample rows per file.
func Describe(path string, sampleRows int) (Info, error) {
	info := Info{Path: path}
	st, err := os.Stat(path)
	if err != nil {
		return info, fmt.Errorf("inspect: %w", err)
	}
	var files []string
	if st.IsDir() {
		if m, err := ReadManifest(path); err == nil {
			info.Manifest = m
		} else if !errors.Is(err, os.ErrNotExist) {
			return info, err
		}
		err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.HasPrefix(d.Name(), ".") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return info, fmt.Errorf("inspect: %w", err)
		}
		sort.Strings(files)
		if len(files) == 0 && info.Manifest == nil {
			return info, fmt.Errorf("inspect %s: no manifest.json and no .parquet files", path)
		}
	} else {
		files = []string{path}
	}
	for _, f := range files {
		fi, err := DescribeFile(f, sampleRows, Limits{})
		if err != nil {
			return info, err
		}
		info.Files = append(info.Files, fi)
		info.Rows += fi.Rows
		info.RowGroups += fi.RowGroups
		info.CompressedBytes += fi.CompressedBytes
		info.UncompressedBytes += fi.UncompressedBytes
	}
	return info, nil
}

// DescribeFile describes one Parquet file with up to sampleRows rows from its first row group.
func DescribeFile(path string, sampleRows int, lim Limits) (fi FileInfo, err error) {
	lim = lim.withDefaults()
	f, err := openParquet(path, lim)
	if err != nil {
		return fi, err
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("shard %s: %w: parquet decoder panicked: %v", path, ErrCorrupt, r)
		}
	}()
	md := f.pf.Metadata()
	fi = FileInfo{
		Path: path, Schema: f.pf.Schema().String(), Mapping: DetectMapping(f.pf.Schema()),
		Rows: md.NumRows, RowGroups: len(md.RowGroups),
	}
	leaves := f.pf.Schema().Columns()
	fi.Columns = make([]ColumnInfo, len(leaves))
	for i, p := range leaves {
		fi.Columns[i].Path = strings.Join(p, ".")
	}
	for _, rg := range md.RowGroups {
		for i, c := range rg.Columns {
			ci := &fi.Columns[i]
			ci.Type = c.MetaData.Type.String()
			ci.Compression = c.MetaData.Codec.String()
			ci.CompressedBytes += c.MetaData.TotalCompressedSize
			ci.UncompressedBytes += c.MetaData.TotalUncompressedSize
			fi.CompressedBytes += c.MetaData.TotalCompressedSize
			fi.UncompressedBytes += c.MetaData.TotalUncompressedSize
		}
	}
	if sampleRows > 0 && len(f.pf.RowGroups()) > 0 {
		if fi.Samples, err = sampleRowsOf(f, leaves, sampleRows, lim); err != nil {
			return fi, err
		}
	}
	return fi, nil
}

// sampleRowsOf reads the first n rows of the first row group, every column, formatted.
func sampleRowsOf(f *parquetFile, leaves [][]string, n int, lim Limits) ([]map[string]string, error) {
	if rows := f.pf.Metadata().RowGroups[0].NumRows; int64(n) > rows {
		n = int(rows)
	}
	var bytes int64
	for _, c := range f.pf.Metadata().RowGroups[0].Columns {
		bytes += c.MetaData.TotalUncompressedSize
	}
	if bytes > lim.MaxRowGroupBytes {
		return nil, fmt.Errorf("shard %s row group 0: %d bytes exceed the limit of %d", f.path, bytes, lim.MaxRowGroupBytes)
	}
	if err := checkColumnPages(f, leafColumns(f.pf.Root()), 0, lim); err != nil {
		return nil, err
	}
	rows := f.pf.RowGroups()[0].Rows()
	defer rows.Close()
	buf := make([]parquet.Row, n)
	k, err := rows.ReadRows(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("shard %s row group 0: %w", f.path, err)
	}
	out := make([]map[string]string, k)
	for i, row := range buf[:k] {
		parts := make([][]string, len(leaves))
		for _, v := range row {
			c := v.Column()
			if c < 0 || c >= len(leaves) {
				return nil, fmt.Errorf("shard %s row group 0 row %d: %w: value of column %d", f.path, i, ErrCorrupt, c)
			}
			parts[c] = append(parts[c], showValue(v))
		}
		m := make(map[string]string, len(leaves))
		for c, p := range parts {
			s := strings.Join(p, ", ")
			if len(p) > 1 {
				s = "[" + s + "]"
			}
			m[strings.Join(leaves[c], ".")] = s
		}
		out[i] = m
	}
	return out, nil
}

// showValue formats a value for people: short text quoted, long or binary bytes as size + sha256 prefix.
func showValue(v parquet.Value) string {
	if v.IsNull() {
		return "null"
	}
	if v.Kind() == parquet.ByteArray || v.Kind() == parquet.FixedLenByteArray {
		b := v.ByteArray()
		if utf8.Valid(b) && !bytes.ContainsFunc(b, unicode.IsControl) {
			if len(b) <= ShownTextBytes {
				return strconv.Quote(string(b))
			}
			cut := ShownTextBytes
			for !utf8.RuneStart(b[cut]) {
				cut--
			}
			return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(string(b[:cut])), len(b))
		}
		if len(b) <= ShownBytes && utf8.Valid(b) {
			return strconv.Quote(string(b))
		}
		sum := sha256.Sum256(b)
		return fmt.Sprintf("<%d bytes sha256:%s>", len(b), hex.EncodeToString(sum[:4]))
	}
	return v.String()
}

// WriteText writes info for people: totals, then per file its schema, columns and samples.
func (info Info) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d files, %d rows, %d row groups, %d bytes compressed, %d uncompressed\n",
		info.Path, len(info.Files), info.Rows, info.RowGroups, info.CompressedBytes, info.UncompressedBytes)
	if m := info.Manifest; m != nil {
		fmt.Fprintf(&b, "manifest: schema v%d, source %q, created %s, image size %d (%s)\n",
			m.SchemaVersion, m.Source, m.Created.Format("2006-01-02 15:04:05Z07:00"), m.ImageSize, m.ResizeMode)
		names := make([]string, 0, len(m.Splits))
		for n := range m.Splits {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s := m.Splits[n]
			fmt.Fprintf(&b, "  split %-10s %4d shards %8d images %8d captions %12d bytes\n", n, len(s.Shards), s.Images, s.Captions, s.Bytes)
		}
		if len(m.ClassNames) > 0 {
			fmt.Fprintf(&b, "  %d classes: %s\n", len(m.ClassNames), strings.Join(m.ClassNames, ", "))
		}
		for r, n := range m.Rejects {
			fmt.Fprintf(&b, "  rejected %d: %s\n", n, r)
		}
	}
	for _, f := range info.Files {
		fmt.Fprintf(&b, "\n%s: %d rows, %d row groups, %d bytes compressed, %d uncompressed\nmapping: %s\n%s",
			f.Path, f.Rows, f.RowGroups, f.CompressedBytes, f.UncompressedBytes, f.Mapping, f.Schema)
		if !strings.HasSuffix(f.Schema, "\n") {
			b.WriteByte('\n')
		}
		for _, c := range f.Columns {
			fmt.Fprintf(&b, "  %-28s %-12s %-12s %12d -> %12d bytes\n", c.Path, c.Type, c.Compression, c.UncompressedBytes, c.CompressedBytes)
		}
		for i, s := range f.Samples {
			fmt.Fprintf(&b, "  row %d:\n", i)
			for _, c := range f.Columns {
				fmt.Fprintf(&b, "    %s = %s\n", c.Path, s[c.Path])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
