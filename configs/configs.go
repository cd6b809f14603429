// Package configs embeds clipgo's recipes — model presets, training runs, data preparation —
// so that the binary carries them wherever it runs; files on disk with the same layout work
// the same way.
package configs

import "embed"

// FS holds models/*.yaml (model presets by name), train/*.yaml (training recipes),
// data/*.yaml (prepare recipes) and zeroshot/*.yaml (zero-shot tasks: class names, templates).
//
//go:embed models/*.yaml train/*.yaml data/*.yaml zeroshot/*.yaml
var FS embed.FS
