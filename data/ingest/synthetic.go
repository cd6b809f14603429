package ingest

import (
	"context"
	"fmt"

	"github.com/clipgo/clipgo/data/synth"
)

// MaxSyntheticScenes bounds SyntheticOptions.N and ZeroShotN.
const MaxSyntheticScenes = 100_000_000

// SyntheticOptions sizes the built-in synthetic data set.
type SyntheticOptions struct {
	N         int   // training scenes, Split "" (prepare splits them into train and val)
	ZeroShotN int   // labelled zero-shot scenes of held-out pairs, Split SplitZeroShot
	Seed      int64 // the data set is a pure function of Seed and Size
	Size      int   // image side in pixels; 0 means synth.DefaultSize
}

// SyntheticSource yields scenes of package synth; see Synthetic.
type SyntheticSource struct{ opts SyntheticOptions }

// Synthetic returns a source of opts.N training scenes (synth.Scene 0..N-1, never showing a
// held-out colour × shape pair; unlabelled) followed by opts.ZeroShotN zero-shot scenes
// (synth.ZeroShot 0..ZeroShotN-1, labelled with their index in synth.Classes()).
func Synthetic(opts SyntheticOptions) (*SyntheticSource, error) {
	if err := (synth.Options{Seed: opts.Seed, Size: opts.Size}).Validate(); err != nil {
		return nil, err
	}
	if opts.N < 0 || opts.ZeroShotN < 0 || opts.N > MaxSyntheticScenes || opts.ZeroShotN > MaxSyntheticScenes {
		return nil, fmt.Errorf("synthetic: scene counts %d and %d outside [0, %d]", opts.N, opts.ZeroShotN, MaxSyntheticScenes)
	}
	return &SyntheticSource{opts: opts}, nil
}

// Name returns "synthetic(seed=S,size=P)".
func (s *SyntheticSource) Name() string {
	size := s.opts.Size
	if size == 0 {
		size = synth.DefaultSize
	}
	return fmt.Sprintf("synthetic(seed=%d,size=%d)", s.opts.Seed, size)
}

// Classes returns synth.Classes(): every colour × shape pair, which zero-shot labels index.
func (s *SyntheticSource) Classes() []string { return synth.Classes() }

// Scan yields the training scenes, keyed "synth-<index>", then the zero-shot scenes, keyed
// "zeroshot-<index>". Nothing is rejected.
func (s *SyntheticSource) Scan(ctx context.Context, yield func(Item) error, _ func(Reject) error) error {
	opts := synth.Options{Seed: s.opts.Seed, Size: s.opts.Size}
	for i := 0; i < s.opts.N; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sc := synth.Scene(opts, i)
		if err := yield(Item{Key: fmt.Sprintf("synth-%08d", i), Captions: sc.Captions,
			Origin: fmt.Sprintf("synthetic scene %d", i), Image: sc.Image}); err != nil {
			return err
		}
	}
	for i := 0; i < s.opts.ZeroShotN; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		sc := synth.ZeroShot(opts, i)
		if err := yield(Item{Key: fmt.Sprintf("zeroshot-%08d", i), Captions: sc.Captions, Label: int32p(sc.Label),
			Origin: fmt.Sprintf("synthetic zero-shot scene %d", i), Image: sc.Image, Split: SplitZeroShot}); err != nil {
			return err
		}
	}
	return nil
}

// ManifestExtra records the held-out colour × shape pairs, by name and by class index, so
// that evaluation knows which combinations training never showed.
func (s *SyntheticSource) ManifestExtra() map[string]any {
	var names []string
	var classes []int
	for _, p := range synth.HeldOut() {
		names, classes = append(names, p.String()), append(classes, p.Index())
	}
	return map[string]any{"held_out_pairs": names, "held_out_classes": classes}
}
