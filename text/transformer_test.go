package text

import "testing"

func TestEOTPosition(t *testing.T) {
	for _, c := range []struct {
		row  []int32
		want int
	}{
		{[]int32{49406, 320, 1125, 49407, 0, 0}, 3},
		{[]int32{49406, 49407, 49407, 0}, 1}, // ties: the first, as torch.argmax
		{[]int32{0, 0, 0}, 0},
		{[]int32{5}, 0},
		{[]int32{1, 2, 3, 9}, 3},
	} {
		if got := EOTPosition(c.row); got != c.want {
			t.Errorf("EOTPosition(%v) = %d, want %d", c.row, got, c.want)
		}
	}
}
