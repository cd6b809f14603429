package index

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/clipgo/clipgo/internal/browsercheck"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// searchPageFixture writes a result page of n hits whose query, keys and captions are long
// unbroken strings (the worst case for a narrow window), and returns its path and result.
func searchPageFixture(t *testing.T, n int) (string, SearchResult) {
	t.Helper()
	res := SearchResult{
		Query: "a dog running on the beach " + strings.Repeat("withaverylongwordthatdoesnotbreak", 6),
		Kind:  "text", Over: SearchOverImages, Rows: 1000,
		Checkpoint: "/runs/flickr8k-vit-tiny-with-a-long-directory-name/step-000300.safetensors",
		Index:      "/indexes/flickr8k-vit-tiny-with-a-long-directory-name.parquet",
	}
	var rows []Row
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 64, 64))
		for p := range 64 * 64 {
			img.Set(p%64, p/64, color.RGBA{uint8(40 * i), 100, 200, 255})
		}
		var b bytes.Buffer
		stagetest.Must(t, jpeg.Encode(&b, img, nil))
		key := "flickr8k/" + strings.Repeat("0123456789", 5) + "_" + string(rune('a'+i)) + ".jpg"
		rows = append(rows, Row{Key: key, JPG: b.Bytes()})
		res.Hits = append(res.Hits, SearchHit{Rank: i + 1, Row: i, Key: key, Split: "test",
			Caption: "A caption " + strings.Repeat("unbrokenunbrokenunbroken", 4), Score: 0.5 - 0.01*float64(i)})
	}
	path := filepath.Join(t.TempDir(), "search.html")
	stagetest.Must(t, writeSearchHTML(path, res, rows, nil))
	return path, res
}

// TestSearchPage: the page names the query and the checkpoint and index it came from, loads
// the hits' images lazily with their size given (no reflow as they arrive), and its CSS wraps
// long words and fits the grid and images to a narrow window.
func TestSearchPage(t *testing.T) {
	path, res := searchPageFixture(t, 5)
	raw, err := os.ReadFile(path)
	stagetest.Must(t, err)
	doc, err := html.Parse(bytes.NewReader(raw))
	stagetest.Must(t, err)
	var imgs, lazy, sized int
	byClass := map[string]string{}
	var style, viewport string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			switch n.Data {
			case "img":
				imgs++
				if a["loading"] == "lazy" {
					lazy++
				}
				if a["width"] != "" && a["height"] != "" {
					sized++
				}
			case "style":
				style += n.FirstChild.Data
			case "meta":
				if a["name"] == "viewport" {
					viewport = a["content"]
				}
			}
			if c := a["class"]; c != "" && n.FirstChild != nil && n.FirstChild.Type == html.TextNode {
				byClass[c] = n.FirstChild.Data
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if imgs != 5 || lazy != 5 || sized != 5 {
		t.Errorf("%d images, %d lazy, %d with a size; want 5 of each", imgs, lazy, sized)
	}
	if byClass["query-text"] != res.Query {
		t.Errorf("query shown as %q", byClass["query-text"])
	}
	if byClass["checkpoint"] != res.Checkpoint || !strings.Contains(string(raw), res.Index) {
		t.Errorf("checkpoint shown as %q; index shown: %v", byClass["checkpoint"], strings.Contains(string(raw), res.Index))
	}
	if !strings.Contains(viewport, "width=device-width") {
		t.Errorf("viewport %q", viewport)
	}
	for _, rule := range []string{
		"overflow-wrap: anywhere",       // long keys, captions and queries break
		"minmax(min(100%, 160px), 1fr)", // the grid's columns never exceed the window
		"max-width: 100%",               // nor do the images
		".hit { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em; min-width: 0; }", // grid items may shrink
	} {
		if !strings.Contains(style, rule) {
			t.Errorf("the page's CSS lacks %q", rule)
		}
	}
}

// TestSearchPageInBrowser lays the page out in headless Chromium at 1280 and 390 px: it may
// not be wider than the window. Runs with CLIPGO_BROWSER_CHECK=1 (make browser-check).
func TestSearchPageInBrowser(t *testing.T) {
	b := browsercheck.Require(t)
	path, _ := searchPageFixture(t, 8)
	browsercheck.Check(t, b, path, "search")
}

// TestSearchPageNamesItsSource: Search's page names the checkpoint file that embedded the
// query (a run directory's newest, resolved) and the index it searched.
func TestSearchPageNamesItsSource(t *testing.T) {
	fx := embedTestFixture(t)
	page := filepath.Join(t.TempDir(), "out.html")
	res, err := Search(t.Context(), SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: "a red square", K: 2, HTML: page}, io.Discard)
	stagetest.Must(t, err)
	raw, err := os.ReadFile(page)
	stagetest.Must(t, err)
	if res.Checkpoint == "" || res.Index != fx.index {
		t.Errorf("result names checkpoint %q, index %q", res.Checkpoint, res.Index)
	}
	for _, want := range []string{html.EscapeString(res.Checkpoint), html.EscapeString(fx.index), "a red square"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
