package prepare

import (
	"io"

	"github.com/clipgo/clipgo/data/shard"
)

// Inspect describes a shard file or a prepared dataset directory on w: schema, rows, row
// groups, bytes and the first sampleRows rows.
func Inspect(w io.Writer, path string, sampleRows int) error {
	info, err := shard.Describe(path, sampleRows)
	if err != nil {
		return err
	}
	return info.WriteText(w)
}
