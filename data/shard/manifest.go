package shard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// SchemaVersion is the version of the dataset layout and Record schema this package writes
// and reads. A manifest with another version is rejected rather than misread.
const SchemaVersion = 1

// ManifestName is the manifest's file name inside a dataset directory.
const ManifestName = "manifest.json"

// MaxManifestBytes bounds the manifest size ReadManifest accepts.
const MaxManifestBytes = 64 << 20

// Manifest describes a prepared dataset directory: where it came from, how images were
// sized, and each split's shards with their counts.
type Manifest struct {
	SchemaVersion int               `json:"schema_version"`
	Source        string            `json:"source"` // e.g. "synthetic", "flickr8k", "imagefolder:/data/x"
	Created       time.Time         `json:"created"`
	ImageSize     int               `json:"image_size"`  // pixels of the stored images' target side
	ResizeMode    string            `json:"resize_mode"` // e.g. "center_crop", "border", "keep_ratio"
	Splits        map[string]*Split `json:"splits"`
	ClassNames    []string          `json:"class_names,omitempty"` // labelled sets: name of each label
	Rejects       map[string]int64  `json:"rejects,omitempty"`     // rejected items by reason
	Extra         map[string]any    `json:"extra,omitempty"`       // free form, e.g. held-out attribute combinations
}

// Split is one split of a dataset (train, val, zeroshot, ...).
type Split struct {
	Shards   []ShardInfo `json:"shards"`
	Images   int64       `json:"images"`
	Captions int64       `json:"captions"`
	Bytes    int64       `json:"bytes"`
}

// NewSplit sums shards into a Split.
func NewSplit(shards []ShardInfo) *Split {
	s := &Split{Shards: shards}
	for _, sh := range shards {
		s.Images += sh.Rows
		s.Captions += sh.Captions
		s.Bytes += sh.Bytes
	}
	return s
}

// Validate checks the manifest's version and the consistency of its splits: shard paths
// relative and inside the dataset, counts non-negative and equal to the shards' sums.
func (m *Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("manifest schema version %d is not supported (this build reads version %d)", m.SchemaVersion, SchemaVersion)
	}
	if len(m.Splits) == 0 {
		return errors.New("manifest has no splits")
	}
	for name, s := range m.Splits {
		if s == nil {
			return fmt.Errorf("split %q is null", name)
		}
		sum := NewSplit(s.Shards)
		for _, sh := range s.Shards {
			p := sh.Path
			if p == "" || path.IsAbs(p) || strings.Contains(p, `\`) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
				return fmt.Errorf("split %q: shard path %q must be a clean relative path inside the dataset", name, p)
			}
			if sh.Rows < 0 || sh.Captions < 0 || sh.Bytes < 0 {
				return fmt.Errorf("split %q shard %s: negative count", name, p)
			}
		}
		if sum.Images != s.Images || sum.Captions != s.Captions || sum.Bytes != s.Bytes {
			return fmt.Errorf("split %q: totals (%d images, %d captions, %d bytes) differ from its shards' (%d, %d, %d)",
				name, s.Images, s.Captions, s.Bytes, sum.Images, sum.Captions, sum.Bytes)
		}
	}
	return nil
}

// Files returns the paths of a split's shards inside the dataset directory dir.
func (m *Manifest) Files(dir, split string) ([]string, error) {
	s := m.Splits[split]
	if s == nil {
		names := make([]string, 0, len(m.Splits))
		for n := range m.Splits {
			names = append(names, n)
		}
		return nil, fmt.Errorf("dataset %s has no split %q (has %v)", dir, split, names)
	}
	files := make([]string, len(s.Shards))
	for i, sh := range s.Shards {
		files[i] = filepath.Join(dir, filepath.FromSlash(sh.Path))
	}
	return files, nil
}

// WriteManifest validates m and writes it to dir/manifest.json atomically.
func WriteManifest(dir string, m *Manifest) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("manifest %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest %s: %w", dir, err)
	}
	return writeFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n'))
}

// ReadManifest reads and validates dir/manifest.json. It is strict: unknown fields, a
// trailing value or another schema version are errors.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	f, err := fileinput.OpenRegular(p) // a FIFO is refused, not waited on
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	return m, nil
}

// ParseManifest decodes and validates manifest JSON.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxManifestBytes)
	}
	var probe struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, err
	}
	if probe.SchemaVersion == nil {
		return nil, errors.New("no schema_version: not a clipgo manifest")
	}
	if *probe.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("schema version %d is not supported (this build reads version %d)", *probe.SchemaVersion, SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the manifest object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// writeFileAtomic writes b to path whole or not at all (internal/atomicfile).
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b) }
