package main

// The commands README.md shows must work as shown: every `clipgo …` names a subcommand that
// exists, with flags that exist and values of their types, and every `make …` a target the
// Makefile has. The clipgo commands are parsed against the real command tree (newRootCmd),
// the way cobra parses them before it runs anything (cobra checks flags even with --help, but
// not the positional arguments nor required flags); the help and version forms are really run,
// and so is `make help`. A test in this package reaches the tree without exporting it, and
// without building the binary.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/testenv"
)

// readmeCommand is one command line shown in README.md.
type readmeCommand struct {
	line  int      // where it is shown
	shown string   // as shown
	words []string // the command's words after the program name, without environment assignments
	make  bool     // a make command (else clipgo's)
}

// readmeCommands returns the clipgo and make commands of README.md: the lines of its code
// blocks, and its inline code spans. In a line such as `mpirun … bin/clipgo-mpi pretrain …`
// the command is what follows the clipgo binary.
func readmeCommands(readme string) []readmeCommand {
	var cmds []readmeCommand
	add := func(line int, text string) {
		for _, seg := range shellSegments(text) {
			for len(seg) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(seg[0]) {
				seg = seg[1:] // VAR=value before the program
			}
			for i, w := range seg {
				if base := filepath.Base(w); base == "clipgo" || base == "clipgo-mpi" {
					cmds = append(cmds, readmeCommand{line: line, shown: text, words: seg[i+1:]})
					break
				}
				if i == 0 && w == "make" {
					cmds = append(cmds, readmeCommand{line: line, shown: text, words: seg[1:], make: true})
					break
				}
			}
		}
	}
	// Inline code spans may go on over a line break within a paragraph (CommonMark): they are
	// found in whole paragraphs.
	var para []string
	paraLine := 0
	spans := func() {
		text := strings.Join(para, "\n")
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatchIndex(text, -1) {
			add(paraLine+strings.Count(text[:m[0]], "\n"), strings.ReplaceAll(text[m[2]:m[3]], "\n", " "))
		}
		para = para[:0]
	}
	fenced := false
	var continued strings.Builder // a code line ending in a backslash goes on
	for i, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			spans()
			fenced = !fenced
			continue
		}
		if fenced {
			if strings.HasSuffix(line, "\\") {
				continued.WriteString(strings.TrimSuffix(line, "\\") + " ")
				continue
			}
			add(i+1, continued.String()+line)
			continued.Reset()
			continue
		}
		if strings.TrimSpace(line) == "" {
			spans()
			continue
		}
		if len(para) == 0 {
			paraLine = i + 1
		}
		para = append(para, line)
	}
	spans()
	return cmds
}

// shellSegments splits a shell command line into the words of each simple command (split at
// ; && || | &), as sh would word-split it: quotes and backslashes, a # comment at the start of
// a word. Redirections and substitutions are not expected in README commands.
func shellSegments(s string) [][]string {
	var segs [][]string
	var words []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	endSeg := func() {
		endWord()
		if len(words) > 0 {
			segs = append(segs, words)
		}
		words = nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				w.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '#' && !inWord:
			endSeg()
			return segs
		case c == ' ' || c == '\t':
			endWord()
		case c == ';' || c == '|' || c == '&':
			endSeg()
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	endSeg()
	return segs
}

// placeholder matches a word that stands for something to fill in (RUN, CMD, …) or for more
// of the same (...).
var placeholder = regexp.MustCompile(`^([A-Z][A-Z0-9_]*|\.\.\.|…)$`)

func TestReadmeCommands(t *testing.T) {
	root := testenv.RepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	mk := testenv.Command(t, "make", "apt-get install make")
	cmds := readmeCommands(string(raw))
	var nClipgo, nMake int
	targets := map[string]bool{}
	for _, c := range cmds {
		var problems []string
		if c.make {
			nMake++
			problems = checkMake(mk, root, c, targets)
		} else {
			nClipgo++
			problems = checkClipgo(c)
		}
		for _, p := range problems {
			t.Errorf("README.md:%d `%s`: %s", c.line, c.shown, p)
		}
		if testing.Verbose() {
			t.Logf("README.md:%d make=%v %q", c.line, c.make, c.words)
		}
	}
	if nClipgo < 5 || nMake < 5 {
		t.Fatalf("found %d clipgo and %d make commands in README.md: the extraction is broken", nClipgo, nMake)
	}
	// `make help` runs, and lists every target README.md shows.
	help, err := runMake(mk, root, "help")
	if err != nil {
		t.Fatal(err)
	}
	for target := range targets {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `\s`).MatchString(help) {
			t.Errorf("make help does not list %q, which README.md shows", target)
		}
	}
	t.Logf("%d clipgo and %d make commands of README.md checked", nClipgo, nMake)
}

// TestReadmeCommandsCatch feeds the checks commands that must fail (a check that cannot fail
// would pass README.md whatever it showed) and a few that must pass.
func TestReadmeCommandsCatch(t *testing.T) {
	root := testenv.RepoRoot(t)
	mk := testenv.Command(t, "make", "apt-get install make")
	readme := "Run `clipgo pretrian --config demo`, `clipgo pretrain\n--no-such-flag x`,\n" +
		"`clipgo bench --batch many`, `clipgo prepare --no-such`, `clipgo inspect a b`,\n" +
		"`make no-such-target` and `make demo --always-make`.\n" +
		"```sh\nmpirun -np 2 bin/clipgo-mpi pretrain \\\n  --outt run   # a comment\n```\n"
	cmds := readmeCommands(readme)
	if len(cmds) != 8 {
		t.Fatalf("%d commands found, want 8: %+v", len(cmds), cmds)
	}
	for _, c := range cmds {
		var problems []string
		if c.make {
			problems = checkMake(mk, root, c, map[string]bool{})
		} else {
			problems = checkClipgo(c)
		}
		if len(problems) == 0 {
			t.Errorf("`%s` (words %q) passed the checks", c.shown, c.words)
		}
		t.Logf("`%s`: %s", c.shown, strings.Join(problems, "; "))
	}
	for _, good := range []string{"clipgo --version", "clipgo pretrain --help", "clipgo"} {
		c := readmeCommands("`" + good + "`")
		if len(c) != 1 {
			t.Fatalf("`%s`: %d commands found", good, len(c))
		}
		if problems := checkClipgo(c[0]); len(problems) > 0 {
			t.Errorf("`%s`: %v", good, problems)
		}
	}
	if got := shellSegments(`A=1 make x 'y z' "a\"b" c\ d # e`); len(got) != 1 || strings.Join(got[0], "|") != `A=1|make|x|y z|a"b|c d` {
		t.Errorf("shellSegments: %q", got)
	}
}

// checkClipgo parses a clipgo command line against the command tree and returns what is wrong
// with it; a subcommand placeholder (`clipgo CMD --help`) stands for every subcommand. Help
// forms, --version and the bare `clipgo` are run.
func checkClipgo(c readmeCommand) []string {
	words := c.words
	if len(words) > 0 && placeholder.MatchString(words[0]) && words[0] != "..." && words[0] != "…" {
		var problems []string
		for _, sub := range newRootCmd().Commands() {
			if sub.IsAvailableCommand() {
				problems = append(problems, checkClipgo(readmeCommand{line: c.line, shown: c.shown, words: append([]string{sub.Name()}, words[1:]...)})...)
			}
		}
		return problems
	}
	var args []string
	for _, w := range words {
		if w != "..." && w != "…" {
			args = append(args, w)
		}
	}
	cmd, rest, err := newRootCmd().Find(args)
	if err != nil {
		return []string{err.Error()}
	}
	cmd.InitDefaultHelpFlag()
	// A flag named without its value (`clipgo prepare --row-group-rows`) is a mention: it must
	// exist.
	if n := len(rest); n > 0 && strings.HasPrefix(rest[n-1], "--") && !strings.Contains(rest[n-1], "=") {
		name := strings.TrimPrefix(rest[n-1], "--")
		f := cmd.Flag(name)
		if f == nil {
			return []string{cmd.CommandPath() + " has no flag --" + name}
		}
		if f.NoOptDefVal == "" {
			rest = rest[:n-1]
		}
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return []string{cmd.CommandPath() + ": " + err.Error()}
	}
	if pos := cmd.Flags().Args(); len(pos) > 0 {
		if err := cmd.ValidateArgs(pos); err != nil {
			return []string{cmd.CommandPath() + ": " + err.Error()}
		}
	}
	help, _ := cmd.Flags().GetBool("help")
	version, _ := cmd.Flags().GetBool("version")
	switch {
	case cmd == cmd.Root() && version:
		if err := runClipgo(args, "clipgo "); err != nil {
			return []string{err.Error()}
		}
	case help || (cmd == cmd.Root() && len(args) == 0):
		if err := runClipgo(args, "Usage:"); err != nil {
			return []string{err.Error()}
		}
	}
	return nil
}

// runClipgo runs a clipgo command line in this process: it must succeed and print want.
func runClipgo(args []string, want string) error {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{}, args...)) // never nil: cobra reads os.Args for nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("clipgo %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	if !strings.Contains(out.String(), want) {
		return fmt.Errorf("clipgo %s printed no %q:\n%s", strings.Join(args, " "), want, out.String())
	}
	return nil
}

// checkMake requires the targets of a make command line to exist, with `make -n` (which
// prints what it would do, and runs nothing but recursive makes, also with -n).
func checkMake(mk, root string, c readmeCommand, targets map[string]bool) []string {
	args := []string{"-n"}
	for _, w := range c.words {
		switch {
		case strings.HasPrefix(w, "-") || placeholder.MatchString(w):
			return []string{fmt.Sprintf("unexpected word %q in a make command", w)}
		case !strings.Contains(w, "="):
			targets[w] = true
		}
		args = append(args, w)
	}
	if _, err := runMake(mk, root, args...); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// runMake runs make in the repository root and returns its output.
func runMake(mk, root string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mk, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
