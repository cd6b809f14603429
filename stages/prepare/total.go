package prepare

import (
	"context"
	"sync"

	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/progress"
)

// countTotal gives bar its total, and so an ETA, for the sources that list their items
// without reading an image (a captions file, an image folder): a second scan counts them
// beside the work, and the bar gets the count when it is done. Other sources make or read
// the image bytes as they scan (synthetic scenes, IDX and Parquet records, tar shards,
// downloads), so counting would be a second pass over the data: they show their rate alone
// (synthetic's total is known beforehand). It returns the function that stops the count and
// waits for it.
func countTotal(ctx context.Context, cfg Config, src ingest.Source, bar *progress.Bar) (stop func()) {
	countable := cfg.Source == "imagefolder" || (cfg.Source == "captions" && !fileinput.IsStdin(cfg.Captions.File))
	if !countable {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		var n int64
		err := src.Scan(ctx, func(ingest.Item) error { n++; return nil }, func(ingest.Reject) error { return nil })
		if err == nil {
			bar.SetTotal(n)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
