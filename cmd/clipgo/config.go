package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// addConfigFlag gives cmd a --config FILE flag: a YAML mapping whose keys are the command's own
// flag names. Its values become the flags' defaults, so a recipe file and the command line
// speak one language, and a flag given on the command line always wins over the file.
func addConfigFlag(cmd *cobra.Command) {
	cmd.Flags().String("config", "", "YAML recipe whose keys are this command's flag names; flags given on the command line win")
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		path, _ := cmd.Flags().GetString("config")
		if path != "" {
			if err := applyConfigFile(cmd.Flags(), path); err != nil {
				return err
			}
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// maxConfigBytes bounds a recipe file: recipes are a screenful of keys, never megabytes.
const maxConfigBytes = 1 << 20

func applyConfigFile(flags *pflag.FlagSet, path string) error {
	raw, err := fileinput.ReadFile(path, maxConfigBytes) // a FIFO is refused, not waited on; the size is bounded
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	values, err := parseConfig(raw)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := flags.Lookup(k)
		if f == nil || k == "config" {
			var names []string
			flags.VisitAll(func(f *pflag.Flag) {
				if f.Name != "config" && f.Name != "help" {
					names = append(names, f.Name)
				}
			})
			hint := ""
			if s := config.Suggest(k, names); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			return fmt.Errorf("config %s: unknown key %q (%sthe keys are this command's flag names: %s)", path, k, hint, strings.Join(names, ", "))
		}
		if f.Changed {
			continue // the command line wins
		}
		if err := flags.Set(k, values[k]); err != nil {
			return fmt.Errorf("config %s: key %q: %w", path, k, err)
		}
	}
	return nil
}

// parseConfig reads a flat YAML mapping of scalars (lists become comma-separated values, as
// pflag's slice flags take them).
func parseConfig(raw []byte) (map[string]string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(doc))
	for k, v := range doc {
		switch v := v.(type) {
		case nil:
			return nil, fmt.Errorf("key %q has no value", k)
		case map[string]any:
			return nil, fmt.Errorf("key %q: nested mappings are not recipe values", k)
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			out[k] = strings.Join(parts, ",")
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}
