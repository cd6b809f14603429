package fusion

import (
	"fmt"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
	G "gorgonia.org/gorgonia"
)

// This file holds what a trainer tells the model between steps beyond the batch itself: the
// image identity of each row (multi-positive captions) and the seed of patch dropout's
// draws; and the separate evaluation graph of a model that drops patches in training.

// identityIDs returns 0 … n−1: every row its own image.
func identityIDs(n int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return ids
}

// SetImageIDs sets the image identity of each row of the next batches (this rank's, [Batch]):
// rows of equal ids are captions of one image, and CLIP's loss takes all of them as positives
// of each other (see contrastiveLossOp). nil restores one image per row. Only model.loss clip
// (without the triplet term) takes several captions of an image in a batch; other losses
// refuse repeated ids.
func (m *Model) SetImageIDs(ids []int32) error {
	if ids == nil {
		copy(m.ids, identityIDs(m.batch))
		return nil
	}
	if len(ids) != m.batch {
		return fmt.Errorf("fusion: %d image identities for a batch of %d", len(ids), m.batch)
	}
	seen := make(map[int32]bool, len(ids))
	repeated := false
	for _, id := range ids {
		repeated = repeated || seen[id]
		seen[id] = true
	}
	if repeated {
		if obj, err := m.cfg.Objective(); err != nil {
			return err
		} else if _, ok := obj.(CLIP); !ok {
			return fmt.Errorf("fusion: several captions of one image in a batch (multi-positive) need model.loss clip without model.triplet.weight, not %q", m.cfg.Loss)
		}
	}
	copy(m.ids, ids)
	return nil
}

// SetStepSeed seeds the random choices of the next Step that are the model's own (the
// patches a ViT with model.vision.patch_dropout keeps): a trainer passes a function of its
// step, so that a resumed run draws what the uninterrupted one did. Data parallel, each rank's
// rows draw as the same rows of one process's whole batch would. Without it the draws follow
// one another from a fixed seed.
func (m *Model) SetStepSeed(seed uint64) {
	d, ok := m.vision.(vision.PatchDropper)
	if !ok {
		return
	}
	first := 0
	if m.group != nil {
		first = m.group.Rank() * m.batch
	}
	d.SetPatchSeed(uint64(m.seed)^(seed*0x9e3779b97f4a7c15), first)
}

// towers are the inputs of the evaluation graph.
type towers struct {
	vision vision.Tower
	text   text.Tower
}

// buildEval returns the machine of an evaluation graph over the model's parameters (read in
// place): the towers built on a frozen builder, which keeps every patch, then the same
// normalisation and loss as training, tapped into the same outputs.
func (m *Model) buildEval(objective Loss) (G.VM, error) {
	weights := make(map[string]*nn.Param, len(m.b.Params()))
	for _, p := range m.b.Params() {
		weights[p.Name] = p
	}
	b := nn.NewFrozenBuilder(weights)
	cfg, e := m.cfg, m.cfg.EmbedDim
	t := &towers{}
	var err error
	if t.vision, err = vision.New(b, cfg.Vision, m.batch, e, cfg.QuickGELU); err != nil {
		return nil, err
	}
	if t.text, err = text.New(b, cfg.Text, m.batch, e, cfg.QuickGELU); err != nil {
		return nil, err
	}
	imgTap, err := nn.Tap(t.vision.Output(), m.imgFeat)
	if err != nil {
		return nil, err
	}
	txtTap, err := nn.Tap(t.text.Output(), m.txtFeat)
	if err != nil {
		return nil, err
	}
	in := LossInputs{Group: m.group, ImageIDs: m.ids}
	if in.Image, err = nn.L2Normalize(imgTap); err != nil {
		return nil, err
	}
	if in.Text, err = nn.L2Normalize(txtTap); err != nil {
		return nil, err
	}
	out, err := objective.Build(b, in)
	if err != nil {
		return nil, err
	}
	if _, err := nn.Tap(out.PerImage, m.logits); err != nil {
		return nil, err
	}
	if out.PerText != nil {
		if _, err := nn.Tap(out.PerText, m.logitsT); err != nil {
			return nil, err
		}
	}
	loss, err := nn.Tap(out.Loss, m.loss)
	if err != nil {
		return nil, err
	}
	onLoss := m.onLoss // not m: see build
	if _, err := nn.Hook(loss, func() {
		if *onLoss != nil {
			(*onLoss)()
		}
	}); err != nil {
		return nil, err
	}
	if _, _, err := nn.ShareBuffers(b.G, nil); err != nil {
		return nil, err
	}
	m.evalTowers = t
	return G.NewTapeMachine(b.G), nil
}

// loadEval loads a batch into the towers Forward runs.
func (m *Model) loadEval(images []float32, tokens []int32) error {
	if m.evalTowers == nil {
		return m.load(images, tokens)
	}
	if err := m.evalTowers.vision.SetImages(images); err != nil {
		return fmt.Errorf("fusion: %w", err)
	}
	if err := m.evalTowers.text.SetTokens(tokens); err != nil {
		return fmt.Errorf("fusion: %w", err)
	}
	return nil
}
