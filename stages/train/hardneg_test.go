package train

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// clustered returns n = clusters·size unit rows of dim in clusters tight around random
// centres, in a shuffled row order, and each row's cluster.
func clustered(clusters, size, dim int, seed uint64) ([]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float64, clusters)
	for c := range centres {
		centres[c] = make([]float64, dim)
		for d := range dim {
			centres[c][d] = rng.NormFloat64()
		}
	}
	n := clusters * size
	rows := rng.Perm(n)
	emb := make([]float32, n*dim)
	label := make([]int, n)
	for i := range n {
		c := rows[i] / size
		label[i] = c
		v := make([]float64, dim)
		var ss float64
		for d := range dim {
			v[d] = centres[c][d] + 0.05*rng.NormFloat64()
			ss += v[d] * v[d]
		}
		for d := range dim {
			emb[i*dim+d] = float32(v[d] / math.Sqrt(ss))
		}
	}
	return emb, label
}

// TestNeighbourOrder: on clustered embeddings, the order is a permutation whose every group
// is one whole cluster; it is a function of the seed (another seed orders the groups
// otherwise); a group that does not divide n leaves a short last group.
func TestNeighbourOrder(t *testing.T) {
	const clusters, size, dim = 12, 8, 16
	emb, label := clustered(clusters, size, dim, 3)
	order := neighbourOrder(emb, dim, size, 42)
	if got := slices.Sorted(slices.Values(order)); len(got) != clusters*size || got[0] != 0 || got[len(got)-1] != len(got)-1 || len(slices.Compact(got)) != len(got) {
		t.Fatalf("order %v is not a permutation of 0…%d", order, clusters*size-1)
	}
	for g := range clusters {
		for _, i := range order[g*size : (g+1)*size] {
			if label[i] != label[order[g*size]] {
				t.Fatalf("group %d mixes clusters: %v", g, order[g*size:(g+1)*size])
			}
		}
	}
	if again := neighbourOrder(emb, dim, size, 42); !slices.Equal(again, order) {
		t.Fatal("the same seed gave another order")
	}
	if other := neighbourOrder(emb, dim, size, 43); slices.Equal(other, order) {
		t.Fatal("another seed gave the same order")
	}
	// Groups of 5 over clusters of 8: a permutation still, each group's rows nearest its seed.
	odd := neighbourOrder(emb, dim, 5, 7)
	if got := slices.Sorted(slices.Values(odd)); len(slices.Compact(got)) != clusters*size {
		t.Fatalf("groups of 5: %d distinct rows of %d", len(slices.Compact(got)), clusters*size)
	}
	sim := func(a, b int) (s float32) {
		for d := range dim {
			s += emb[a*dim+d] * emb[b*dim+d]
		}
		return s
	}
	for g := 0; g+5 <= len(odd); g += 5 {
		seed := odd[g]
		placed := map[int]bool{}
		for _, i := range odd[:g+1] {
			placed[i] = true
		}
		members := odd[g+1 : g+5]
		worst := sim(seed, members[len(members)-1])
		for j := range clusters * size { // no unplaced row beats the group's least similar member
			if !placed[j] && !slices.Contains(members, j) && sim(seed, j) > worst {
				t.Fatalf("group at %d: row %d (cosine %g) is nearer its seed than member %d (%g)", g, j, sim(seed, j), members[3], worst)
			}
		}
	}
	if short := neighbourOrder(emb[:10*dim], dim, 4, 1); len(short) != 10 {
		t.Fatalf("10 rows in groups of 4 gave %d", len(short))
	}
}

// TestHardNegativesConfig: the keys' checks, and a group must divide a stream's images.
func TestHardNegativesConfig(t *testing.T) {
	for _, c := range []HardNegativesConfig{{EveryEpochs: -1}, {EveryEpochs: 1, Group: 1}, {Group: -2}} {
		if c.validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := HardNegativesConfig{EveryEpochs: 2}
	if err := c.validate(); err != nil || c.group() != DefaultHardNegativeGroup {
		t.Fatalf("%+v: %v, group %d", c, err, c.group())
	}
	if c.mines(0) || c.mines(1) || !c.mines(2) || c.mines(3) || !c.mines(4) {
		t.Error("every_epochs 2 should mine epochs 2 and 4 only")
	}
	if (HardNegativesConfig{}).mines(2) {
		t.Error("off mines")
	}
	if err := c.checkShare(16, 1); err != nil {
		t.Error(err)
	}
	if err := c.checkShare(16, 4); err == nil || !strings.Contains(err.Error(), "divide the 4 images") {
		t.Errorf("16 rows of 4 captions each, groups of 8: %v", err)
	}
}

// TestReadOrder: an order file round-trips; one of another stream or epoch, empty or not JSON
// is refused.
func TestReadOrder(t *testing.T) {
	raw, _ := json.Marshal(orderFile{Stream: 2, Epoch: 3, Keys: []string{"a", "b\nc"}})
	keys, err := readOrder(bytes.NewReader(raw), 2, 3)
	if err != nil || !slices.Equal(keys, []string{"a", "b\nc"}) {
		t.Fatalf("%q, %v", keys, err)
	}
	for _, bad := range []struct {
		raw           string
		stream, epoch int
	}{{string(raw), 1, 3}, {string(raw), 2, 4}, {`{"stream":0,"epoch":1,"keys":[]}`, 0, 1}, {`{"keys":`, 0, 0}, {"", 0, 0}} {
		if _, err := readOrder(strings.NewReader(bad.raw), bad.stream, bad.epoch); err == nil {
			t.Errorf("%q as stream %d epoch %d accepted", bad.raw, bad.stream, bad.epoch)
		}
	}
}

// FuzzReadOrder: any bytes give keys or an error, never a panic, and keys only when the file
// names the stream and epoch asked for.
func FuzzReadOrder(f *testing.F) {
	f.Add([]byte(`{"stream":0,"epoch":1,"keys":["k1","k2"]}`))
	f.Add([]byte(`{"stream":0,"epoch":1,"keys":null}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := readOrder(bytes.NewReader(raw), 0, 1)
		if err == nil && len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
	})
}
