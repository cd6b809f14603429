package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxCheckNodes bounds the nodes checkShape visits, aliases followed: a config is a screenful
// of keys, and an alias bomb must not turn the check into the slow part.
const maxCheckNodes = 1 << 16

// shapeError is a problem checkShape found, with the line it is on.
type shapeError struct {
	line int
	msg  string
}

func (e *shapeError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// checkShape walks the YAML document n against the Go type t it will be decoded into, and
// reports what yaml.v3 would get wrong or say unhelpfully: a key the struct does not have
// (named by its dotted path, with the keys allowed there and the likeliest one meant), and a
// number with a fraction given for an integer key, which yaml.v3 truncates silently (3.7
// becomes 3). Type mismatches it leaves to the decoder, which names them with their line.
func checkShape(n *yaml.Node, t reflect.Type) error {
	budget := maxCheckNodes
	return walkShape(n, t, "", &budget)
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func walkShape(n *yaml.Node, t reflect.Type, path string, budget *int) error {
	if *budget--; *budget < 0 {
		return &shapeError{n.Line, fmt.Sprintf("more than %d nodes (aliases counted as often as they are used): not a config", maxCheckNodes)}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil // the type reads its own YAML
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := walkShape(c, t, path, budget); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil
		}
		return walkShape(n.Alias, t, path, budget)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields, open := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
				if err := walkMerge(v, t, path, budget); err != nil {
					return err
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				if open {
					continue
				}
				return &shapeError{k.Line, unknownKey(join(path, k.Value), k.Value, slices.Sorted(mapKeys(fields)))}
			}
			if err := walkShape(v, ft, join(path, k.Value), budget); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 1; i < len(n.Content); i += 2 {
			if err := walkShape(n.Content[i], t.Elem(), join(path, n.Content[i-1].Value), budget); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := walkShape(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), budget); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			if _, err := wholeNumber(n.Value, t); err != nil {
				return &shapeError{n.Line, fmt.Sprintf("%s: %v", path, err)}
			}
		}
	}
	return nil
}

// walkMerge checks the value of a "<<" merge key: a mapping, or a sequence of them.
func walkMerge(v *yaml.Node, t reflect.Type, path string, budget *int) error {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			if err := walkShape(c, t, path, budget); err != nil {
				return err
			}
		}
		return nil
	}
	return walkShape(v, t, path, budget)
}

// structKeys returns the YAML keys of struct t with their types (inline structs' keys
// included); open is true when an inline map takes any other key.
func structKeys(t reflect.Type) (keys map[string]reflect.Type, open bool) {
	keys = map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if !f.IsExported() || name == "-" {
			continue
		}
		if _, opts, _ := strings.Cut(f.Tag.Get("yaml"), ","); slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub, subOpen := structKeys(ft)
				for k, v := range sub {
					keys[k] = v
				}
				open = open || subOpen
			case reflect.Map:
				open = true
			}
			continue
		}
		keys[name] = f.Type
	}
	return keys, open
}

func mapKeys(m map[string]reflect.Type) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKey says that key (dotted path full) is not one of allowed, and which one it most
// likely meant.
func unknownKey(full, key string, allowed []string) string {
	msg := fmt.Sprintf("unknown key %q", full)
	if s := Suggest(key, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + "; the keys here are: " + strings.Join(allowed, ", ")
}

// wholeNumber parses s, a number written with a fraction or an exponent, for an integer of
// type t: a whole number in t's range is fine (1e5, 100.0), anything else an error, where
// yaml.v3 would truncate 3.7 to 3 without a word.
func wholeNumber(s string, t reflect.Type) (float64, error) {
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s is not a whole number, and this key takes an integer", s)
	}
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f < 0 || f >= math.Ldexp(1, t.Bits()) {
			return 0, fmt.Errorf("%s is out of range for this key (a non-negative integer below 2^%d)", s, t.Bits())
		}
	default:
		if f < -math.Ldexp(1, t.Bits()-1) || f >= math.Ldexp(1, t.Bits()-1) || v.OverflowInt(int64(f)) {
			return 0, fmt.Errorf("%s is out of range for this key (an integer of %d bits)", s, t.Bits())
		}
	}
	return f, nil
}

// Suggest returns the candidate closest to name by edit distance when it is close enough to be
// a likely typo (at most a third of name's length, at least 1, away), else "". The distance is
// our own 20 lines rather than a module: it is the textbook dynamic programme, and config
// keys are a few dozen bytes.
func Suggest(name string, candidates []string) string {
	best, bestD := "", max(len(name)/3, 1)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in runes (insertions, deletions
// and substitutions cost 1).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
