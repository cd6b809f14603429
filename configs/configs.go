// Package configs embeds clipgo's recipes — model presets, training runs, data preparation —
// so that the binary carries them wherever it runs; files on disk with the same layout work
// the same way.
package configs

import "embed"

// FS holds models/*.yaml (model presets by name), train/*.yaml (training recipes) and
// data/*.yaml (prepare recipes).
//
//go:embed models/*.yaml train/*.yaml data/*.yaml
var FS embed.FS
