package ingest

import (
	"bytes"
	"image"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/synth"
)

func TestSynthetic(t *testing.T) {
	src, err := Synthetic(SyntheticOptions{N: 40, ZeroShotN: 16, Seed: 3, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Classes(); len(got) != synth.NumClasses {
		t.Fatalf("%d classes", len(got))
	}
	r, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.items) != 56 || len(r.rejects) != 0 {
		t.Fatalf("%d items, %d rejects", len(r.items), len(r.rejects))
	}
	classes := src.Classes()
	for i, it := range r.items {
		rgba, ok := it.Image.(*image.RGBA)
		if !ok || rgba.Bounds().Dx() != 32 || it.Load != nil || len(it.Captions) != synth.CaptionsPerScene {
			t.Fatalf("item %d: %+v", i, it)
		}
		if i < 40 {
			if it.Split != "" || it.Label != nil {
				t.Errorf("training item %d: split %q label %v", i, it.Split, it.Label)
			}
			for _, h := range synth.HeldOut() {
				for _, c := range it.Captions {
					if strings.Contains(c, h.String()) {
						t.Errorf("training item %d caption %q names held-out %v", i, c, h)
					}
				}
			}
			continue
		}
		if it.Split != SplitZeroShot || it.Label == nil || !strings.Contains(it.Captions[0], classes[*it.Label]) {
			t.Errorf("zero-shot item %d: split %q label %v captions %q", i, it.Split, it.Label, it.Captions)
		}
	}
	// A second scan gives the same data.
	again, err := scanAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.items {
		a, b := r.items[i], again.items[i]
		if a.Key != b.Key || !bytes.Equal(a.Image.(*image.RGBA).Pix, b.Image.(*image.RGBA).Pix) {
			t.Fatalf("item %d differs between scans", i)
		}
	}
	for _, bad := range []SyntheticOptions{{N: -1}, {ZeroShotN: -1}, {Size: 8}, {Size: synth.MaxSize + 1}, {N: MaxSyntheticScenes + 1}} {
		if _, err := Synthetic(bad); err == nil {
			t.Errorf("Synthetic(%+v) accepted", bad)
		}
	}
}
