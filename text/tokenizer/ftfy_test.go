package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/clipgo/clipgo/internal/testenv"
)

// ftfyCase is one line of a cases file: a text and ftfy.fix_text's output for it.
type ftfyCase struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

func readFtfyCases(t testing.TB, path string) []ftfyCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []ftfyCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c ftfyCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestFixTextMatchesFtfy compares fixText with ftfy 6.3.1's own outputs on the texts of
// testdata/ftfy_cases.jsonl (see testdata/gen_ftfy_cases.py). FTFY_CASES names more files of
// the same form, e.g. ftfy's test cases or a dataset's captions run through ftfy, to measure
// agreement on them (reported, not required).
func TestFixTextMatchesFtfy(t *testing.T) {
	check := func(path string, require bool) {
		cases := readFtfyCases(t, path)
		agree := 0
		for _, c := range cases {
			got := fixText(c.In)
			if got == c.Out {
				agree++
				continue
			}
			if require {
				t.Errorf("fixText(%+q)\n got %+q\nwant %+q", c.In, got, c.Out)
			} else if testing.Verbose() {
				t.Logf("differs: fixText(%+q)\n got %+q\nwant %+q", c.In, got, c.Out)
			}
		}
		t.Logf("%s: %d of %d texts as ftfy fixes them", filepath.Base(path), agree, len(cases))
	}
	check("testdata/ftfy_cases.jsonl", true)
	for _, path := range filepath.SplitList(os.Getenv("FTFY_CASES")) {
		check(path, false)
	}
}

// FuzzFixText checks what the tokenizer relies on for any valid UTF-8 text: no panic, valid
// UTF-8 out, bounded growth (ligatures, ŉ and NFC's few expanding compositions at most
// double a text), and needsFixText false only where fixText is the identity.
func FuzzFixText(f *testing.F) {
	for _, s := range []string{"", "plain ascii", "voilÃ le travail", "&NTILDE; &amp;amp;", "\x1b[1;31mx\x1b[0m",
		"ﬃ ＷＩＤＥ “q”", "\xc3\xa0 ", "e\u0301", "Ð¿Ñ€", "a\r\nb\u2028c", "\u0149\u0149", "<b>&eacute;</b>\n&eacute;"} {
		f.Add(s)
	}
	for _, c := range readFtfyCases(f, "testdata/ftfy_cases.jsonl") {
		f.Add(c.In)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			s = string(appendValidUTF8(nil, []byte(s)))
		}
		got := fixText(s)
		if !utf8.ValidString(got) {
			t.Fatalf("fixText(%+q) = %+q: invalid UTF-8", s, got)
		}
		if len(got) > 3*len(s)+8 {
			t.Fatalf("fixText(%+q): %d bytes from %d", s, len(got), len(s))
		}
		if !needsFixText([]byte(s)) && got != s {
			t.Fatalf("needsFixText(%+q) is false but fixText gives %+q", s, got)
		}
	})
}

// TestCharmapsMatchPython regenerates ftfy_charmaps.go from Python's codecs, the tables ftfy
// runs on, and checks the committed file is what they give.
func TestCharmapsMatchPython(t *testing.T) {
	python := testenv.Command(t, "python3", "make test-deps installs it with python3-torch")
	out, err := exec.Command(python, "testdata/gen_charmaps.py").Output()
	if err != nil {
		t.Fatalf("gen_charmaps.py: %v", err)
	}
	committed, err := os.ReadFile("ftfy_charmaps.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(committed) {
		t.Error("ftfy_charmaps.go differs from Python's codecs: python3 testdata/gen_charmaps.py > ftfy_charmaps.go")
	}
}

// TestFixTextCases pins the fixers one by one (outputs of ftfy 6.3.1 on the same texts).
func TestFixTextCases(t *testing.T) {
	for in, want := range map[string]string{
		"âœ” No problems":                  "✔ No problems",
		"&macr;\\_(ã\u0083\u0084)_/&macr;": "¯\\_(ツ)_/¯",
		"ＬＯＵＤ　ＮＯＩＳＥＳ":                      "LOUD NOISES",
		"voilÃ le travail":                 "voilà le travail",
		"sÃ³":                              "só",
		"&lt;b&gt; <b>&amp;</b>":           "&lt;b&gt; <b>&amp;</b>",
		"&amp;\n<i>&amp;</i>\n&amp;":       "&\n<i>&amp;</i>\n&amp;",
		"“curly” ‘quotes’ ﬂuﬃ":             "\"curly\" 'quotes' fluffi",
		"a\r\nb\rc\u2028d":                 "a\nb\nc\nd",
		"\x1b[1;31mred\x1b[0m\x00\ufeff!":  "red!",
		"e\u0301":                          "é",
		"&SZLIG;&NTILDE;&Ntilde;":          "SSÑÑ",
		"&#x41;&#65;&#0;&#xD800;":          "AA\ufffd\ufffd",
	} {
		if got := fixText(in); got != want {
			t.Errorf("fixText(%+q) = %+q, want %+q", in, got, want)
		}
	}
}
