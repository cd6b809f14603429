// Package config reads layered YAML configs strictly onto Go structs: files decode in order
// onto the same value (later files override earlier ones field by field), unknown keys (listed
// with the keys allowed there and the likeliest one meant), wrong types and numbers with a
// fraction for integer keys (which yaml.v3 would truncate) are errors that name the key, and
// `--set a.b.c=value` overrides address fields by their YAML names, with the same checks.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// MaxBytes bounds a config file: configs are a screenful of keys, never megabytes.
const MaxBytes = 1 << 20

// ReadFile returns the bytes of path from fsys (nil: the OS file system), bounded by MaxBytes.
func ReadFile(fsys fs.FS, path string) ([]byte, error) {
	var f io.ReadCloser
	var err error
	if fsys == nil {
		f, err = fileinput.OpenRegular(path) // a FIFO is refused, not waited on
	} else {
		f, err = fsys.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err) // a read error names the file already
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("config %s: larger than the %d-byte limit", path, MaxBytes)
	}
	return b, nil
}

// Decode decodes the YAML document raw onto dst (a pointer to a struct), keeping the fields
// it does not mention. Unknown keys are errors; name is the source for messages. A document
// over MaxBytes is refused, wherever it came from.
func Decode(name string, raw []byte, dst any) error {
	if len(raw) > MaxBytes {
		return fmt.Errorf("config %s: %d bytes exceed the %d-byte limit", name, len(raw), MaxBytes)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err == nil {
		if err := checkShape(&doc, reflect.TypeOf(dst)); err != nil {
			return fmt.Errorf("config %s: %w", name, err)
		}
	} // a document that does not parse: the decoder below says where
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty document changes nothing
		}
		return fmt.Errorf("config %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// Set applies one "dotted.key=value" override to dst (a pointer to a struct), addressing
// fields by their yaml tag names; the value is parsed for the field's type.
func Set(dst any, assignment string) error {
	key, value, ok := strings.Cut(assignment, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key=value (e.g. train.steps=100)", assignment)
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config.Set: destination must be a pointer to a struct, not %T", dst)
	}
	v = v.Elem()
	parts := strings.Split(key, ".")
	for i, p := range parts {
		f, found := fieldByTag(v, p)
		if !found {
			return fmt.Errorf("--set %s: %s", key, unknownKey(strings.Join(parts[:i+1], "."), p, tagNames(v)))
		}
		v = f
		if i < len(parts)-1 && v.Kind() != reflect.Struct {
			return fmt.Errorf("--set %s: %s is a value, not a section", key, strings.Join(parts[:i+1], "."))
		}
	}
	if v.Kind() == reflect.Struct {
		return fmt.Errorf("--set %s: %s is a section; set one of its keys (%s)", key, key, strings.Join(tagNames(v), ", "))
	}
	if err := setScalar(v, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("--set %s: %w", key, err)
	}
	return nil
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 90s, 5m)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			f, ferr := wholeNumber(s, v.Type()) // 1e5 is fine, 2.5 is not
			if ferr != nil {
				return fmt.Errorf("%q is not an integer", s)
			}
			n = int64(f)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			f, ferr := wholeNumber(s, v.Type())
			if ferr != nil {
				return fmt.Errorf("%q is not a non-negative integer", s)
			}
			n = uint64(f)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("lists of %s cannot be set from the command line", v.Type().Elem())
		}
		var items []string
		if s != "" {
			items = strings.Split(s, ",")
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("values of type %s cannot be set from the command line", v.Type())
	}
	return nil
}

// fieldByTag finds the exported field of struct v whose yaml name is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && yamlName(f) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tagNames(v reflect.Value) []string {
	var names []string
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && yamlName(f) != "-" {
			names = append(names, yamlName(f))
		}
	}
	return names
}

// yamlName is the key yaml.v3 uses for f: its tag's name, else the lower-cased field name.
func yamlName(f reflect.StructField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" {
		return tag
	}
	return strings.ToLower(f.Name)
}
