//go:build !purego

package imageproc

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// flickrSamples are a few of the shared Flickr8k photographs (landscape and portrait, 4:2:0
// baseline as most web JPEGs are).
var flickrSamples = []string{
	"1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg",
	"1003163366_44323f5815.jpg", "1007129816_e794419615.jpg", "1007320043_627395c3d8.jpg",
}

// pilPeer runs scripts/peers/pil_preprocess.py: PIL's decode and open_clip's eval transform
// (torchvision) of synthetic JPEGs PIL encodes in every layout, plus the given files.
func pilPeer(t *testing.T, size int, extra []string) (dir string, files []string, modes []string) {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, which python3-pil and python3-torchvision install into
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-pil python3-torchvision")
	}
	if out, err := exec.Command(py, "-c", "import PIL, numpy").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 cannot import PIL and numpy (apt-get install python3-pil): "+strings.TrimSpace(string(out)))
	}
	script := filepath.Join(testenv.RepoRoot(t), "scripts/peers/pil_preprocess.py")
	dir = t.TempDir()
	syn := filepath.Join(dir, "synth")
	out, err := exec.Command(py, script, "synth", "--out", syn).Output()
	if err != nil {
		t.Fatalf("pil_preprocess.py synth: %v", err)
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		t.Fatalf("pil_preprocess.py synth printed %q: %v", out, err)
	}
	for _, n := range names {
		files = append(files, filepath.Join(syn, n))
	}
	files = append(files, extra...)
	// --reference pil: PIL calls that follow torchvision line by line (importing torch takes
	// seconds); TestPILPeerMatchesTorchvision checks that they agree.
	args := append([]string{script, "preprocess", "--size", strconv.Itoa(size), "--out", dir, "--reference", "pil"}, files...)
	cmd := exec.Command(py, args...)
	cmd.Stderr = os.Stderr
	if out, err = cmd.Output(); err != nil {
		t.Fatalf("pil_preprocess.py preprocess: %v", err)
	}
	var rep struct {
		PIL, Torchvision string
		Images           []struct{ Mode string }
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Images) != len(files) {
		t.Fatalf("pil_preprocess.py preprocess printed %q: %v", out, err)
	}
	t.Logf("PIL %s, torchvision %s", rep.PIL, rep.Torchvision)
	for _, im := range rep.Images {
		modes = append(modes, im.Mode)
	}
	return dir, files, modes
}

// TestMatchesPIL: JPEGs decode to PIL's pixels, and the eval transform gives the tensor of
// open_clip's eval transform, on synthetic JPEGs of every layout and on Flickr8k photographs.
// The decode and the transform follow the same integer arithmetic as PIL, so the expected
// difference is zero; the bound is the issue's ±1 level. A CMYK JPEG is the exception:
// open_clip resizes it in CMYK and converts to RGB after the crop, while Decode converts first.
func TestMatchesPIL(t *testing.T) {
	const size = 160 // the shared Flickr8k images are 224 px: 160 resizes them down, the synthetic ones up
	var extra []string
	for _, n := range flickrSamples {
		extra = append(extra, testenv.SharedFile(t, filepath.Join("data/flickr8k/images", n)))
	}
	dir, files, modes := pilPeer(t, size, extra)
	for i, f := range files {
		name := filepath.Base(f)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, info, err := Decode(raw, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)+".rgb"))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 3*info.Width*info.Height {
			t.Fatalf("%s: PIL has %d bytes for %dx%d", name, len(want), info.Width, info.Height)
		}
		p := eightBit(img)
		decodeDiff := 0
		for y := 0; y < info.Height; y++ {
			for x := 0; x < info.Width; x++ {
				for c := 0; c < 3; c++ {
					got := int(p.pix[y*p.stride+x*p.bpp+p.off[c]])
					decodeDiff = max(decodeDiff, abs(got-int(want[(y*info.Width+x)*3+c])))
				}
			}
		}

		tensor := make([]float32, 3*size*size)
		if err := EvalTransform(tensor, img, size); err != nil {
			t.Fatal(err)
		}
		wantT, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)+".tensor"))
		if err != nil || len(wantT) != 4*len(tensor) {
			t.Fatalf("%s: tensor file: %d bytes, %v", name, len(wantT), err)
		}
		var evalDiff float64 // in 8-bit levels
		for k, v := range tensor {
			w := math.Float32frombits(binary.LittleEndian.Uint32(wantT[4*k:]))
			evalDiff = max(evalDiff, math.Abs(float64(v-w))*float64(CLIPStd[k/(size*size)])*255)
		}
		t.Logf("%-28s %-4s %3dx%-3d decode max |diff| %d, eval transform max |diff| %.3g levels", name, modes[i], info.Width, info.Height, decodeDiff, evalDiff)
		if decodeDiff > 1 {
			t.Errorf("%s: decoded pixels differ from PIL's by up to %d levels", name, decodeDiff)
		}
		limit := 1.0
		if modes[i] == "CMYK" {
			limit = 3 // resized before (PIL) or after (here) the CMYK -> RGB conversion
		}
		if evalDiff > limit {
			t.Errorf("%s: eval transform differs from open_clip's by up to %.3g levels", name, evalDiff)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestPILPeerMatchesTorchvision: the peer's PIL-only eval transform, which TestMatchesPIL
// compares against, equals torchvision's bit for bit. Importing torch takes ~10 s, so this
// runs outside -short only.
func TestPILPeerMatchesTorchvision(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: importing torch takes ~10 s")
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-pil python3-torchvision")
	}
	if out, err := exec.Command(py, "-c", "import PIL, torchvision, numpy").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 cannot import PIL, torchvision and numpy (apt-get install python3-pil python3-torchvision): "+strings.TrimSpace(string(out)))
	}
	out, err := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts/peers/pil_preprocess.py"), "selftest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SELF-TEST PASSED") {
		t.Fatalf("pil_preprocess.py selftest: %v\n%s", err, out)
	}
}
