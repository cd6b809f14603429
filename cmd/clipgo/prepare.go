package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/stages/prepare"
)

func newPrepareCmd() *cobra.Command {
	cfg := prepare.Config{
		ImageSize:    224,
		ResizeMode:   "center_crop",
		Quality:      imageproc.DefaultJPEGQuality,
		Workers:      runtime.NumCPU(),
		ValFraction:  0.05,
		MaxPixels:    imageproc.DefaultLimits.MaxPixels,
		RowGroupRows: 256,
		ShardRows:    10_000,
	}
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 20_000, 1_000
	var merge bool
	cmd := &cobra.Command{
		Use:   "prepare --source KIND --out DIR [flags]",
		Short: "turn raw image–caption data into Parquet shards with a manifest",
		Long: `prepare reads a source of images and captions, decodes and checks every image, resizes it
once (img2dataset's resize modes), and writes train/val splits as Parquet shards in the
img2dataset schema, with manifest.json and rejects.jsonl beside them. Bad records are skipped
and counted by reason, or stop the run with --strict.

Sources:
  synthetic    built-in captioned shape scenes (--n, --zeroshot-n, --seed); no download
  captions     a captions file (--captions: Flickr token format, CSV/TSV with a header, JSONL)
               beside a folder of images (--images)
  imagefolder  root/<class>/*.jpg|png (--root), a labelled set
  idx          MNIST-style IDX image and label files (--idx-images, --idx-labels), gzipped or not
  parquet      foreign Parquet (img2dataset output, Hugging Face image/text) matched by --input
  webdataset   tar shards matched by --input (key.jpg + key.txt or key.json per sample)
  urls         download the images of a URL + caption list (--input: Parquet, CSV, TSV or JSONL;
               --url-column, --caption-column); OUT/downloads.jsonl records each URL's status
               and error_message, and a rerun fetches only what it does not record yet

--captions may also be a Hugging Face imagefolder directory with metadata.jsonl (file_name, text).

On several machines: --part I/N (I from 0) prepares the images whose key hashes to part I
into OUT/parts/part-I-of-N; once all N are there (one folder OUT), --merge --out OUT writes
the one manifest. Under mpirun, clipgo-mpi prepare makes each rank a part and rank 0 merges.
The parts together hold exactly one process's rows and train/val split.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if merge {
				sum, err := prepare.Merge(cmd.Context(), cfg.Out, logger())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "merged %s\n", sum.Out)
				sum.WriteText(cmd.OutOrStdout())
				return nil
			}
			comm, err := dist.Init()
			if err != nil {
				return err
			}
			defer comm.Close()
			log, progressTo := logger(), io.Writer(os.Stderr)
			if comm.Size() > 1 {
				log = rankLogger(comm.Rank())
				if comm.Rank() != 0 {
					progressTo = io.Discard
				}
			}
			sum, err := prepare.RunRanks(cmd.Context(), cfg, comm, log, progressTo)
			if err != nil {
				return err
			}
			if comm.Rank() != 0 {
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "prepared %s\n", sum.Out)
			sum.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Source, "source", "", "synthetic | captions | imagefolder | idx | parquet | webdataset | urls")
	f.StringVar(&cfg.Out, "out", "", "dataset directory to create")
	f.IntVar(&cfg.ImageSize, "image-size", cfg.ImageSize, "side in pixels of the stored images")
	f.StringVar(&cfg.ResizeMode, "resize-mode", cfg.ResizeMode, "center_crop | keep_ratio | border | no")
	f.IntVar(&cfg.Quality, "quality", cfg.Quality, "JPEG quality of the stored images")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "decode and resize goroutines")
	f.Float64Var(&cfg.ValFraction, "val-fraction", cfg.ValFraction, "share of images in the val split (chosen by key hash)")
	f.IntVar(&cfg.ValCount, "val-count", 0, "exactly this many images in the val split (chosen by key hash; overrides --val-fraction)")
	f.StringVar(&cfg.Part, "part", "", "prepare only part I of N (I/N, I from 0) into OUT/parts, for --merge")
	f.BoolVar(&merge, "merge", false, "write the manifest of --out from its parts (OUT/parts/part-*-of-N) and exit")
	f.Int64Var(&cfg.Seed, "seed", 0, "seed of the synthetic scenes and of the train/val split")
	f.BoolVar(&cfg.Strict, "strict", false, "stop at the first bad record, naming its file and row")
	f.Int64Var(&cfg.MaxPixels, "max-pixels", cfg.MaxPixels, "reject images whose header declares more pixels")
	f.IntVar(&cfg.RowGroupRows, "row-group-rows", cfg.RowGroupRows, "rows per Parquet row group")
	f.Int64Var(&cfg.ShardRows, "shard-rows", cfg.ShardRows, "rows per shard file")
	f.IntVar(&cfg.Synthetic.N, "n", cfg.Synthetic.N, "synthetic: training scenes")
	f.IntVar(&cfg.Synthetic.ZeroShotN, "zeroshot-n", cfg.Synthetic.ZeroShotN, "synthetic: labelled scenes of the held-out combinations")
	f.StringVar(&cfg.Captions.File, "captions", "", "captions: the captions file")
	f.StringVar(&cfg.Captions.Images, "images", "", "captions: the images root")
	f.StringVar(&cfg.Captions.Format, "format", "auto", "captions: auto | token | csv | tsv | jsonl")
	f.StringVar(&cfg.Captions.ImageColumn, "image-column", "", "captions: image column (default filepath, else image)")
	f.StringVar(&cfg.Captions.CaptionColumn, "caption-column", "", "captions: caption column (default title, else caption, else text); urls: default caption")
	f.StringVar(&cfg.Root, "root", "", "imagefolder: root/<class>/*")
	f.StringVar(&cfg.IDXImages, "idx-images", "", "idx: the images file (e.g. train-images-idx3-ubyte.gz)")
	f.StringVar(&cfg.IDXLabels, "idx-labels", "", "idx: the labels file")
	f.StringSliceVar(&cfg.Classes, "classes", nil, "idx: class names of labels 0, 1, ... (comma-separated)")
	f.StringVar(&cfg.Input, "input", "", "parquet, webdataset, urls: a glob of Parquet files, tar shards or URL lists")
	f.StringVar(&cfg.URLs.URLColumn, "url-column", "url", "urls: the column of image URLs")
	f.IntVar(&cfg.URLs.Fetch.Workers, "fetch-workers", ingest.DefaultFetchWorkers, "urls: concurrent downloads")
	f.IntVar(&cfg.URLs.Fetch.PerHost, "per-host", ingest.DefaultPerHost, "urls: concurrent downloads from one host")
	f.DurationVar(&cfg.URLs.Fetch.Timeout, "fetch-timeout", ingest.DefaultFetchTimeout, "urls: time limit of one download attempt")
	f.IntVar(&cfg.URLs.Fetch.Retries, "retries", ingest.DefaultRetries, "urls: further attempts after a timeout, a dropped connection, HTTP 408, 429 or 5xx")
	f.Int64Var(&cfg.URLs.Limits.MaxImageBytes, "max-image-bytes", ingest.DefaultMaxImageBytes, "urls: refuse a download of more bytes")
	addConfigFlag(cmd)
	return cmd
}
