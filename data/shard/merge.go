package shard

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
)

// ManifestPart is one dataset prepared as a part of a bigger one: its manifest, and its
// directory relative to the merged dataset's (slash separated).
type ManifestPart struct {
	Dir      string
	Manifest *Manifest
}

// MergeManifests returns the manifest of a dataset made of parts: each split's shards are the
// parts' shards in part order, with paths relative to the merged directory, and the rejects are
// summed. The parts must agree on everything that describes the data (schema version, source,
// image size, resize mode, class names, extra) or the merge is refused: their images would not
// belong in one dataset. Created is the latest part's.
func MergeManifests(parts []ManifestPart) (*Manifest, error) {
	if len(parts) == 0 {
		return nil, errors.New("no part to merge")
	}
	first := parts[0].Manifest
	firstExtra, err := json.Marshal(first.Extra)
	if err != nil {
		return nil, fmt.Errorf("part %s: extra: %w", parts[0].Dir, err)
	}
	m := &Manifest{
		SchemaVersion: first.SchemaVersion,
		Source:        first.Source,
		ImageSize:     first.ImageSize,
		ResizeMode:    first.ResizeMode,
		ClassNames:    first.ClassNames,
		Extra:         first.Extra,
		Splits:        make(map[string]*Split),
	}
	shards := make(map[string][]ShardInfo)
	for _, p := range parts {
		pm := p.Manifest
		if pm == nil {
			return nil, fmt.Errorf("part %s has no manifest", p.Dir)
		}
		if err := pm.Validate(); err != nil {
			return nil, fmt.Errorf("part %s: %w", p.Dir, err)
		}
		dir := path.Clean(p.Dir)
		if p.Dir == "" || path.IsAbs(dir) || dir == "." || dir == ".." || len(dir) > 2 && dir[:3] == "../" {
			return nil, fmt.Errorf("part directory %q must be a relative path inside the merged dataset", p.Dir)
		}
		extra, err := json.Marshal(pm.Extra)
		if err != nil {
			return nil, fmt.Errorf("part %s: extra: %w", p.Dir, err)
		}
		switch {
		case pm.SchemaVersion != m.SchemaVersion, pm.Source != m.Source, pm.ImageSize != m.ImageSize, pm.ResizeMode != m.ResizeMode:
			return nil, fmt.Errorf("part %s (%s, %d px %s, schema %d) differs from part %s (%s, %d px %s, schema %d)",
				p.Dir, pm.Source, pm.ImageSize, pm.ResizeMode, pm.SchemaVersion, parts[0].Dir, m.Source, m.ImageSize, m.ResizeMode, m.SchemaVersion)
		case !slices.Equal(pm.ClassNames, m.ClassNames):
			return nil, fmt.Errorf("part %s has other class names than part %s", p.Dir, parts[0].Dir)
		case string(extra) != string(firstExtra):
			return nil, fmt.Errorf("part %s records other source details (extra %s) than part %s (%s)", p.Dir, extra, parts[0].Dir, firstExtra)
		}
		if pm.Created.After(m.Created) {
			m.Created = pm.Created
		}
		for name, s := range pm.Splits {
			for _, sh := range s.Shards {
				sh.Path = dir + "/" + sh.Path
				shards[name] = append(shards[name], sh)
			}
		}
		for why, n := range pm.Rejects {
			if m.Rejects == nil {
				m.Rejects = make(map[string]int64)
			}
			m.Rejects[why] += n
		}
	}
	for _, name := range slices.Sorted(maps.Keys(shards)) {
		m.Splits[name] = NewSplit(shards[name])
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
