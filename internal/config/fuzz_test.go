package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode decodes arbitrary bytes as a config onto a struct with every kind of field:
// any outcome but a panic or a hang is fine, and a document that decodes decodes the same
// way twice.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"name: x\nsteps: 3\nquick: true\nevery: 90s\ntags: [a, b]\nvision: {layers: 2, mlp_ratio: 4}\n",
		"vision:\n  layers: 6\n",
		"",
		"name: &a [1, 2]\ntags: *a\n",
		"steps: 99999999999999999999\n",
		"vision: " + strings.Repeat("[", 200) + "\n",
		"a: &a [*a]\n",
		"\xff\xfe",
		"--- \n...\n--- {name: y}\n",
		"steps: 3.7\nvision: {layers: 1e3}\n",
		"base: &b {layers: 2}\nvision: {<<: *b, mlp_ratio: 2}\n",
		"vision: {<<: [{layers: 1}, {layrs: 2}]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a, b outer
		errA := Decode("fuzz", raw, &a)
		errB := Decode("fuzz", raw, &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("decoding twice: %v, then %v", errA, errB)
		}
		if errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("decoding twice: %+v, then %+v", a, b)
		}
	})
}

// FuzzSet applies arbitrary "key=value" overrides: any outcome but a panic is fine, and an
// override that is accepted is accepted again with the same result.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"steps=100", "vision.layers=3", "vision.mlp_ratio=2.5", "every=5m",
		"quick=true", "name= spaced ", "tags=a", "vision=1", "name.x=1", "=1", "steps=1e400", "Plain=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, assignment string) {
		var a outer
		if err := Set(&a, assignment); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		b := a
		if err := Set(&b, assignment); err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("second Set: %v, %+v then %+v", err, a, b)
		}
	})
}
