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

func TestFractionForAnIntegerKeyIsAnError(t *testing.T) {
	// yaml.v3 alone truncates: 3.7 into an int64 is 3, without an error. Decode refuses it.
	for _, doc := range []string{"steps: 3.7\n", "vision: {layers: 2.5}\n", "steps: -0.5\n", "steps: 1e300\n", "steps: .inf\n"} {
		var c outer
		err := Decode("r.yaml", []byte(doc), &c)
		if err == nil || !strings.Contains(err.Error(), "r.yaml: line 1") {
			t.Errorf("Decode(%q) = %v (%+v), want an error on line 1", doc, err, c)
		}
	}
	var c outer
	if err := Decode("r.yaml", []byte("steps: 1e5\nvision: {layers: 6.0}\n"), &c); err != nil || c.Steps != 100000 || c.Vision.Layers != 6 {
		t.Errorf("whole numbers written as floats: %v, %+v; want steps 100000, layers 6", err, c)
	}
	if err := Decode("r.yaml", []byte("base: &b {layers: 1.5}\nvision: *b\n"), &struct {
		Base   map[string]any `yaml:"base"`
		Vision inner          `yaml:"vision"`
	}{}); err == nil || !strings.Contains(err.Error(), "vision.layers") {
		t.Errorf("a fraction through an alias: %v, want an error naming vision.layers", err)
	}
	for _, a := range []string{"steps=3.7", "vision.layers=0.5", "steps=1e400"} {
		if err := Set(&c, a); err == nil || !strings.Contains(err.Error(), "is not an integer") {
			t.Errorf("Set(%q) = %v, want an error", a, err)
		}
	}
	if err := Set(&c, "steps=2e3"); err != nil || c.Steps != 2000 {
		t.Errorf("Set(steps=2e3) = %v, steps %d; want 2000", err, c.Steps)
	}
}

func TestUnknownKeyListsTheKeysAndALikelyOne(t *testing.T) {
	var c outer
	err := Decode("r.yaml", []byte("name: x\nvision:\n  layrs: 2\n"), &c)
	for _, want := range []string{"r.yaml: line 3", `"vision.layrs"`, `did you mean "layers"`, "layers, mlp_ratio"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode: %v, want it to mention %q", err, want)
		}
	}
	if err := Decode("r.yaml", []byte("zzzzzz: 1\n"), &c); err == nil || strings.Contains(err.Error(), "did you mean") ||
		!strings.Contains(err.Error(), "every, name, plain, quick, steps, tags, vision") {
		t.Errorf("a key like none: %v, want the keys and no guess", err)
	}
	err = Set(&c, "vision.mlp_raito=2")
	if err == nil || !strings.Contains(err.Error(), `did you mean "mlp_ratio"`) || !strings.Contains(err.Error(), "layers, mlp_ratio") {
		t.Errorf("Set: %v, want the keys and a guess", err)
	}
	// An inline struct's keys are the outer one's; an inline map takes any key.
	var in struct {
		inner `yaml:",inline"`
		Rest  map[string]any `yaml:",inline"`
	}
	if err := Decode("r.yaml", []byte("layers: 2\nother: 1\n"), &in); err != nil || in.Layers != 2 {
		t.Errorf("inline: %v, %+v", err, in)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"steps", "batch_size", "epochs", "lr", "warmup"}
	for name, want := range map[string]string{"step": "steps", "batchsize": "batch_size", "epoch": "epochs",
		"Warmup": "warmup", "lr": "lr", "xx": "", "learning_rate": "", "": ""} {
		if got := Suggest(name, keys); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", name, got, want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
}
