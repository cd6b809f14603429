package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func newTestFlags() (*pflag.FlagSet, *int, *string, *[]string) {
	f := pflag.NewFlagSet("t", pflag.ContinueOnError)
	n := f.Int("n", 1, "")
	s := f.String("source", "", "")
	l := f.StringSlice("list", nil, "")
	f.String("config", "", "")
	return f, n, s, l
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileSetsFlagsAndCommandLineWins(t *testing.T) {
	f, n, s, l := newTestFlags()
	if err := f.Parse([]string{"--n", "7"}); err != nil {
		t.Fatal(err)
	}
	p := writeConfig(t, "n: 3\nsource: synthetic\nlist: [a, b]\n")
	if err := applyConfigFile(f, p); err != nil {
		t.Fatal(err)
	}
	if *n != 7 {
		t.Errorf("n = %d, want the command line's 7", *n)
	}
	if *s != "synthetic" {
		t.Errorf("source = %q, want synthetic from the file", *s)
	}
	if strings.Join(*l, ",") != "a,b" {
		t.Errorf("list = %v, want [a b]", *l)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "nn: 3\n", `unknown key "nn" (did you mean "n"? the keys are this command's flag names: list, n, source)`},
		{"a fraction for an integer", "n: 3.5\n", `key "n"`},
		{"wrong type", "n: three\n", `key "n"`},
		{"nested", "n:\n  a: 1\n", "nested"},
		{"empty value", "n:\n", "no value"},
		{"config key", "config: x.yaml\n", `unknown key "config"`},
		{"not yaml", "n: [1\n", "config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _, _ := newTestFlags()
			err := applyConfigFile(f, writeConfig(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	f, _, _, _ := newTestFlags()
	if err := applyConfigFile(f, filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: err = %v, want it to name the path", err)
	}
}

// FuzzApplyConfig feeds arbitrary bytes as a recipe file: an error or flags set, never a panic.
func FuzzApplyConfig(f *testing.F) {
	for _, seed := range []string{"n: 3\nsource: synthetic\n", "list: [a, b]\n", "n: [1\n", "&a [*a]\n", "n:\n  a: 1\n", "\xff\xfe", "? [a]\n: 1\n"} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		flags, _, _, _ := newTestFlags()
		_ = applyConfigFile(flags, p)
	})
}
