// Package nn holds the building blocks shared by the vision and text towers: named parameters,
// linear layers, layer norm, GELU, multi-head attention, MLPs and pre-LN residual blocks, and
// for convolutional towers channels-last convolution, batch norm, ReLU and pooling, on
// gorgonia with custom ops where gorgonia's are missing, wrong or slow.
package nn

import "strings"

// Param is one learnable tensor, named as open_clip's state_dict names it
// ("visual.transformer.resblocks.0.attn.in_proj_weight"), so that checkpoints load into
// open_clip and into the PyTorch reference without renaming. Value and Grad are flat row-major
// buffers that the model reads and writes in place; the optimiser and the checkpoint code
// work on them without knowing the graph.
type Param struct {
	Name  string
	Shape []int
	Value []float32 // len(Value) == Size()
	Grad  []float32 // len(Grad) == Size(); written by each backward pass
	Decay bool      // AdamW weight decay applies (open_clip's rule: matrices only)
	// Buffer marks state that ops update themselves (batch norm's running statistics), not the
	// optimiser: its gradient stays zero and it never decays, so AdamW leaves it as it is.
	Buffer bool
	// Locked marks a tensor that training leaves as it is (torch's requires_grad=False, as
	// open_clip's lock_image_tower sets it): it has no gradient buffer (Grad is nil), the
	// backward pass computes nothing for it, and optimisers neither keep state for it nor
	// update it. A locked Buffer (batch norm's running statistics) also stops updating: the op
	// normalises with it as in evaluation. Builder.Lock sets it before the backward pass.
	Locked bool
}

// Size returns the number of elements, the product of Shape (1 for a scalar).
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// DecayByName is open_clip's legacy weight-decay rule, the one ../shared/peers/clip_step.py
// uses by default: no decay for tensors of fewer than 2 dimensions nor for names containing
// "bn", "ln" or "bias". (open_clip's list also names the logit scale, a scalar that the rule
// on dimensions already exempts.)
func DecayByName(name string, shape []int) bool {
	if len(shape) < 2 {
		return false
	}
	for _, s := range []string{"bn", "ln", "bias"} {
		if strings.Contains(name, s) {
			return false
		}
	}
	return true
}
