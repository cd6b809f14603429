package shard

import (
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func TestShowValue(t *testing.T) {
	long := strings.Repeat("a dog runs on the beach ", 20) // 480 bytes
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"short text", []byte("a red circle"), `"a red circle"`},
		{"long text is cut with its size", []byte(long), `… (480 bytes)`},
		{"text cut on a rune boundary", []byte(strings.Repeat("é", 200)), `… (400 bytes)`},
		{"short binary", []byte{0xff, 0xd8, 0xff}, `<3 bytes sha256:`},
		{"long binary", make([]byte, 1000), `<1000 bytes sha256:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := showValue(parquet.ByteArrayValue(tc.in))
			if !strings.Contains(got, tc.want) {
				t.Fatalf("showValue = %q, want it to contain %q", got, tc.want)
			}
			if strings.Contains(got, "\uFFFD") {
				t.Fatalf("showValue cut a rune: %q", got)
			}
		})
	}
}
