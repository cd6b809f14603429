package eval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/configs"
	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/internal/readable"
)

// Bounds on a zero-shot task file, which may come from anywhere: ParseTask refuses more.
const (
	MaxTaskBytes     = config.MaxBytes // the whole YAML file
	MaxTaskClasses   = 10_000          // class names
	MaxTaskTemplates = 1_000           // templates
	MaxPromptBytes   = 1_024           // one class name or one template
)

// Task is a zero-shot classification task: the class names in label order and the prompt
// templates whose embeddings are averaged into each class's classifier weight, as CLIP's
// prompt ensembling does. Each template holds "{}" exactly once, where the class name goes.
type Task struct {
	Name       string   `yaml:"-"` // the built-in name or the file it came from, for messages
	ClassNames []string `yaml:"classnames"`
	Templates  []string `yaml:"templates"`
}

// Prompts returns the prompts of class c: every template with its name filled in.
func (t Task) Prompts(c int) []string {
	out := make([]string, len(t.Templates))
	for i, tpl := range t.Templates {
		out[i] = strings.Replace(tpl, "{}", t.ClassNames[c], 1)
	}
	return out
}

// TaskNames lists the built-in tasks (configs/zeroshot/*.yaml).
func TaskNames() []string {
	entries, _ := fs.ReadDir(configs.FS, "zeroshot")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// LoadTask reads a task: a built-in name ("synthetic", "mnist", "cifar10", "fashion-mnist"),
// or a path to a .yaml/.yml file. A reference with a file extension or a path separator is a
// file; any other is a built-in name.
func LoadTask(ref string) (Task, error) {
	if ref == "" {
		return Task{}, fmt.Errorf("zero-shot task: none given (a built-in name %v or a .yaml file)", TaskNames())
	}
	if ext := filepath.Ext(ref); ext != "" || strings.ContainsRune(ref, filepath.Separator) || strings.Contains(ref, "/") {
		if e := strings.ToLower(ext); e != ".yaml" && e != ".yml" {
			return Task{}, fmt.Errorf("zero-shot task %s: unknown file format %q: a task is a .yaml or .yml file with classnames and templates", ref, ext)
		}
		raw, err := config.ReadFile(nil, ref)
		if err != nil {
			return Task{}, fmt.Errorf("zero-shot task: %w", err)
		}
		return ParseTask(ref, raw)
	}
	raw, err := config.ReadFile(configs.FS, "zeroshot/"+ref+".yaml")
	if err != nil {
		return Task{}, fmt.Errorf("zero-shot task %q: no such built-in task (have %v); give a .yaml file for another", ref, TaskNames())
	}
	return ParseTask(ref, raw)
}

// ParseTask decodes and checks a task file: one YAML mapping with exactly the keys classnames
// (a non-empty list of distinct, non-empty names) and templates (a non-empty list, each with
// "{}" exactly once), within the Max* bounds. name is used in messages.
func ParseTask(name string, raw []byte) (Task, error) {
	t := Task{Name: name}
	fail := func(format string, args ...any) (Task, error) {
		return Task{}, fmt.Errorf("zero-shot task %s: "+format, append([]any{name}, args...)...)
	}
	if len(raw) > MaxTaskBytes {
		return fail("larger than %d bytes", MaxTaskBytes)
	}
	var node yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&node); err != nil {
		if errors.Is(err, io.EOF) {
			return fail("empty file: want a mapping with classnames and templates")
		}
		return fail("not YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return fail("more than one YAML document")
	}
	if len(node.Content) != 1 || node.Content[0].Kind != yaml.MappingNode {
		return fail("not a mapping: want a mapping with classnames and templates")
	}
	// The node tree bounds the work: counting before decoding refuses a huge list (or an
	// alias bomb, which yaml.v3 also refuses) before any string is built.
	root := node.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, v := root.Content[i].Value, root.Content[i+1]
		if v.Kind != yaml.SequenceNode {
			continue
		}
		if len(v.Content) > max(MaxTaskClasses, MaxTaskTemplates) {
			return fail("%s has %d entries, more than the limit", key, len(v.Content))
		}
		// yaml.v3 drops a null entry ("- " or "~") of a list of strings instead of failing,
		// which would shift every later class name onto the wrong label.
		for j, e := range v.Content {
			if e.Kind == yaml.ScalarNode && e.ShortTag() == "!!null" {
				return fail("%s[%d] (line %d) is empty: every entry needs a value, since a class's label is its position in the list", key, j, e.Line)
			}
		}
	}
	dec = yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return fail("%s (a task has only the keys classnames and templates)", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	t.Name = name
	if err := t.Validate(); err != nil {
		return Task{}, fmt.Errorf("zero-shot task %s: %w", name, err)
	}
	return t, nil
}

// Validate checks the class names and templates as ParseTask does.
func (t Task) Validate() error {
	switch {
	case len(t.ClassNames) == 0:
		return errors.New("no classnames")
	case len(t.ClassNames) > MaxTaskClasses:
		return fmt.Errorf("%d classnames, more than the limit of %d", len(t.ClassNames), MaxTaskClasses)
	case len(t.Templates) == 0:
		return errors.New(`no templates (e.g. templates: ["a photo of a {}."])`)
	case len(t.Templates) > MaxTaskTemplates:
		return fmt.Errorf("%d templates, more than the limit of %d", len(t.Templates), MaxTaskTemplates)
	}
	seen := make(map[string]int, len(t.ClassNames))
	for i, c := range t.ClassNames {
		if err := checkPromptText(c); err != nil {
			return fmt.Errorf("classnames[%d] %s: %w", i, readable.Quote(c), err)
		}
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("classnames[%d] is empty", i)
		}
		if j, dup := seen[c]; dup {
			return fmt.Errorf("classnames[%d] %s repeats classnames[%d]: classes must be distinct", i, readable.Quote(c), j)
		}
		seen[c] = i
	}
	for i, tpl := range t.Templates {
		if strings.TrimSpace(tpl) == "" {
			return fmt.Errorf("templates[%d] is empty", i)
		}
		if err := checkPromptText(tpl); err != nil {
			return fmt.Errorf("templates[%d] %s: %w", i, readable.Quote(tpl), err)
		}
		if n := strings.Count(tpl, "{}"); n != 1 {
			return fmt.Errorf("templates[%d] %s has %d {} placeholders, want exactly one (where the class name goes)", i, readable.Quote(tpl), n)
		}
	}
	return nil
}

func checkPromptText(s string) error {
	switch {
	case len(s) > MaxPromptBytes:
		return fmt.Errorf("%d bytes, more than the limit of %d", len(s), MaxPromptBytes)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	return nil
}
