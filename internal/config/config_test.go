package config

import (
	"strings"
	"testing"
	"time"
)

type inner struct {
	Layers int     `yaml:"layers"`
	Ratio  float64 `yaml:"mlp_ratio"`
}

type outer struct {
	Name   string        `yaml:"name"`
	Steps  int64         `yaml:"steps"`
	Quick  bool          `yaml:"quick"`
	Every  time.Duration `yaml:"every"`
	Tags   []string      `yaml:"tags"`
	Vision inner         `yaml:"vision"`
	Plain  int
}

func TestDecodeLayersAndKeepsUnmentionedFields(t *testing.T) {
	var c outer
	if err := Decode("a", []byte("name: x\nvision: {layers: 2, mlp_ratio: 4}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := Decode("b", []byte("vision: {layers: 6}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "x" || c.Vision.Layers != 6 || c.Vision.Ratio != 4 {
		t.Fatalf("layered decode = %+v, want name x, layers 6, ratio 4", c)
	}
	if err := Decode("empty", nil, &c); err != nil || c.Vision.Layers != 6 {
		t.Fatalf("empty document: %v, %+v", err, c)
	}
}

func TestDecodeErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"vision: {layerz: 2}\n", "layerz"},
		{"steps: many\n", "many"},
		{"vision: 3\n", "line 1"},
		{"name: [\n", "recipe.yaml"},
	} {
		var c outer
		err := Decode("recipe.yaml", []byte(tc.doc), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%q) = %v, want an error mentioning %q", tc.doc, err, tc.want)
		}
	}
}

func TestSet(t *testing.T) {
	var c outer
	for _, a := range []string{"name=demo", "steps=100", "quick=true", "every=90s", "tags=a,b", "vision.layers=6", "vision.mlp_ratio=2.5", "plain=3"} {
		if err := Set(&c, a); err != nil {
			t.Fatalf("Set(%q): %v", a, err)
		}
	}
	if c.Name != "demo" || c.Steps != 100 || !c.Quick || c.Every != 90*time.Second || len(c.Tags) != 2 ||
		c.Vision.Layers != 6 || c.Vision.Ratio != 2.5 || c.Plain != 3 {
		t.Fatalf("after Set: %+v", c)
	}
	for _, tc := range []struct{ a, want string }{
		{"vision.layerz=2", `unknown key "vision.layerz"`},
		{"steps=many", `"many" is not an integer`},
		{"quick=maybe", "not true or false"},
		{"vision=3", "is a section"},
		{"name.first=x", "is a value, not a section"},
		{"noequals", "want key=value"},
		{"=3", "want key=value"},
		{"every=soon", "not a duration"},
		{"vision.mlp_ratio=x", "not a number"},
	} {
		if err := Set(&c, tc.a); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%q) = %v, want an error mentioning %q", tc.a, err, tc.want)
		}
	}
}

func TestDecodeRefusesOverLimit(t *testing.T) {
	raw := []byte("name: " + strings.Repeat("x", MaxBytes))
	var c outer
	err := Decode("big.yaml", raw, &c)
	if err == nil || !strings.Contains(err.Error(), "config big.yaml") || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("error %v, want the file and the limit", err)
	}
}
