package nn

import "testing"

// TestDecayByName pins open_clip's legacy rule, the reference's default param groups.
func TestDecayByName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape []int
		want  bool
	}{
		{"visual.conv1.weight", []int{128, 3, 4, 4}, true},
		{"transformer.resblocks.0.attn.in_proj_weight", []int{384, 128}, true},
		{"positional_embedding", []int{32, 128}, true}, // legacy rule: a matrix, so decayed
		{"token_embedding.weight", []int{49408, 128}, true},
		{"visual.proj", []int{128, 128}, true},
		{"transformer.resblocks.0.attn.in_proj_bias", []int{384}, false},
		{"visual.ln_pre.weight", []int{128}, false},
		{"ln_final.weight", []int{128}, false},
		{"visual.class_embedding", []int{128}, false},
		{"logit_scale", nil, false},
		{"transformer.resblocks.1.mlp.c_fc.bias", []int{512}, false},
	} {
		if got := DecayByName(tc.name, tc.shape); got != tc.want {
			t.Errorf("DecayByName(%s, %v) = %v, want %v", tc.name, tc.shape, got, tc.want)
		}
	}
}
