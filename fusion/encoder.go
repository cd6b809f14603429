package fusion

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/text/tokenizer"
)

// Encoder turns images and texts into L2-normalised embeddings with a model, for zero-shot
// classification, retrieval and search. The model's graph has a fixed batch size, so inputs
// go through in batches of it, the last one padded (the padding's outputs are dropped).
type Encoder struct {
	m   *Model
	tok *tokenizer.Tokenizer
}

// NewEncoder wraps m; texts are tokenized with the CLIP tokenizer at m's context length
// (longer texts are truncated, EOT kept last, as OpenAI's tokenizer does with truncate=True).
func NewEncoder(m *Model) (*Encoder, error) {
	tok, err := tokenizer.New()
	if err != nil {
		return nil, err
	}
	return &Encoder{m: m, tok: tok}, nil
}

// Dim returns the embedding width E.
func (e *Encoder) Dim() int { return e.m.cfg.EmbedDim }

// ImageLen returns the values of one CLIP-normalised image, 3·S·S.
func (e *Encoder) ImageLen() int { s := e.m.cfg.Vision.ImageSize; return 3 * s * s }

// Images embeds n images given as [n,3,S,S] CLIP-normalised values; the result is [n,E].
func (e *Encoder) Images(images []float32) ([]float32, error) {
	per := e.ImageLen()
	if len(images)%per != 0 {
		return nil, fmt.Errorf("encoder: %d image values are not a whole number of %d-value images", len(images), per)
	}
	return batched(e, images, per, e.m.EncodeImages)
}

// Texts embeds texts; the result is [len(texts),E].
func (e *Encoder) Texts(texts []string) ([]float32, error) {
	L := e.m.cfg.Text.ContextLength
	ids := make([]int32, len(texts)*L)
	for i, s := range texts {
		if err := e.tok.TokenizeInto(ids[i*L:(i+1)*L], s); err != nil {
			return nil, fmt.Errorf("encoder: text %d: %w", i, err)
		}
	}
	return e.Tokens(ids)
}

// Tokens embeds token rows [n,L]; the result is [n,E].
func (e *Encoder) Tokens(ids []int32) ([]float32, error) {
	L := e.m.cfg.Text.ContextLength
	if len(ids)%L != 0 {
		return nil, fmt.Errorf("encoder: %d token ids are not a whole number of %d-token rows", len(ids), L)
	}
	return batched(e, ids, L, e.m.EncodeTexts)
}

// batched runs encode over whole model batches of rows of width per, padding the last batch
// by repeating its final row, and L2-normalises every output row.
func batched[T any](e *Encoder, in []T, per int, encode func([]T) ([]float32, error)) ([]float32, error) {
	B, E := e.m.batch, e.m.cfg.EmbedDim
	n := len(in) / per
	out := make([]float32, 0, n*E)
	buf := make([]T, B*per)
	for start := 0; start < n; start += B {
		k := min(B, n-start)
		copy(buf, in[start*per:(start+k)*per])
		for r := k; r < B; r++ { // pad with the last real row
			copy(buf[r*per:(r+1)*per], in[(start+k-1)*per:(start+k)*per])
		}
		feats, err := encode(buf)
		if err != nil {
			return nil, err
		}
		for r := 0; r < k; r++ {
			out = append(out, normalized(feats[r*E:(r+1)*E])...)
		}
	}
	return out, nil
}

// normalized returns v / ‖v‖ (v itself when it is zero), as F.normalize does with eps 1e-12.
func normalized(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	n := math.Max(math.Sqrt(ss), 1e-12)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}
