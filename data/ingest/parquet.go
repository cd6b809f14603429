package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// ReasonBadFile rejects the rest of a foreign Parquet file that cannot be read (truncated,
// not Parquet, a missing or mistyped column): the rows before the fault are kept.
const ReasonBadFile = "bad_file"

// ParquetSource re-reads foreign Parquet files (img2dataset output, Hugging Face style
// image/text files, or clipgo's own shards); see Parquet.
type ParquetSource struct {
	pattern string
	files   []string
	limits  Limits
}

// Parquet returns a source of the rows of the Parquet files matching glob, in name order.
// Each file's columns are matched by shard.DetectMapping; a file without a key column gets
// keys "<file base name>/<row>". A file that fails part-way is rejected from that row on
// (ReasonBadFile) and the scan goes on with the next one.
func Parquet(glob string) (*ParquetSource, error) {
	files, err := inputFiles("parquet", glob)
	if err != nil {
		return nil, err
	}
	return &ParquetSource{pattern: glob, files: files, limits: Limits{}.withDefaults()}, nil
}

// Name returns "parquet:<glob>".
func (s *ParquetSource) Name() string { return "parquet:" + s.pattern }

// Classes returns nil: foreign labels are kept as numbers without names.
func (s *ParquetSource) Classes() []string { return nil }

// Scan yields one item per row, with the row's captions cleaned as a captions file's are.
func (s *ParquetSource) Scan(ctx context.Context, yield func(Item) error, reject func(Reject) error) error {
	// Errors of yield and reject stop the scan; errors of the file only reject the file.
	var stop error
	yield, reject = stopOnError(&stop, yield), stopOnError(&stop, reject)
	for _, file := range s.files {
		if _, err := fileinput.Check(file); err != nil { // it may have changed since Parquet
			if rerr := reject(Reject{Origin: file, Reason: ReasonBadFile, Detail: err.Error()}); rerr != nil {
				return rerr
			}
			continue
		}
		var rows int64
		err := shard.Read(ctx, []string{file}, shard.ReadOptions{Workers: 1}, func(smp shard.Sample) error {
			rows++
			origin := fmt.Sprintf("%s row %d", file, smp.Pos.FileRow)
			var caps []string
			for _, c := range smp.AllCaptions() {
				clean, reason, detail := cleanCaption(c, s.limits.MaxCaptionBytes)
				if reason != "" {
					if err := reject(Reject{Origin: origin, Key: smp.Key, Reason: reason, Detail: detail}); err != nil {
						return err
					}
					continue
				}
				caps = append(caps, clean)
			}
			if len(caps) == 0 {
				return reject(Reject{Origin: origin, Key: smp.Key, Reason: ReasonNoCaption, Detail: "the row has no usable caption"})
			}
			if int64(len(smp.JPG)) > s.limits.MaxImageBytes {
				return reject(Reject{Origin: origin, Key: smp.Key, Reason: ReasonFileTooLarge,
					Detail: fmt.Sprintf("image of %d bytes, limit %d", len(smp.JPG), s.limits.MaxImageBytes)})
			}
			jpg := smp.JPG
			return yield(Item{Key: smp.Key, Captions: caps, Label: smp.Label, Origin: origin,
				Load: func() ([]byte, error) { return jpg, nil }})
		})
		switch {
		case err == nil:
		case stop != nil:
			return stop
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			if rerr := reject(Reject{Origin: file, Reason: ReasonBadFile,
				Detail: fmt.Sprintf("after %d rows: %v", rows, err)}); rerr != nil {
				return rerr
			}
		}
	}
	return nil
}

// stopOnError wraps a callback so that its first error is also kept in *stop.
func stopOnError[T any](stop *error, fn func(T) error) func(T) error {
	return func(v T) error {
		err := fn(v)
		if err != nil && *stop == nil {
			*stop = err
		}
		return err
	}
}

// inputFiles expands a source's --input glob into its files in name order, each a regular
// file: they are opened later, and a FIFO among them would block that for good.
func inputFiles(source, glob string) ([]string, error) {
	files, err := filepath.Glob(glob)
	if err != nil {
		return nil, fmt.Errorf("%s --input %q: %w", source, glob, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s --input %q matches no file", source, glob)
	}
	sort.Strings(files)
	for _, f := range files {
		if _, err := fileinput.Check(f); err != nil {
			return nil, fmt.Errorf("%s --input %q: %w", source, glob, err)
		}
	}
	return files, nil
}
