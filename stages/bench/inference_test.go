package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
)

// TestRunInference runs the inference benchmark on the tiny model (2 timed batches of 4 rows
// per tower after 1 warm-up) and checks that it went through the encoder evaluation uses, and
// that the JSON fields scripts/bench_peer.py reads are there and positive.
func TestRunInference(t *testing.T) {
	made := 0
	orig := newEncoder
	newEncoder = func(cfg fusion.Config, params []*nn.Param, maxBatch int) (*fusion.Encoder, error) {
		made++
		if maxBatch != 4 {
			t.Errorf("encoder for batches of %d, want 4", maxBatch)
		}
		return orig(cfg, params, maxBatch)
	}
	defer func() { newEncoder = orig }()

	res, err := RunInference(context.Background(), Options{Preset: "tiny", Threads: 2, Steps: 2, Warmup: 1, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if made != 1 {
		t.Fatalf("fusion.NewEncoderFrom called %d times, want once (the inference path)", made)
	}
	if res.Batch != 4 || res.TimedBatches != 2 || res.WarmupBatches != 1 || res.Threads != 2 ||
		len(res.ImageTimes) != 2 || len(res.TextTimes) != 2 {
		t.Fatalf("settings not applied: %+v", res)
	}
	if res.Params != 1369601 {
		t.Errorf("params %d, want the reference's 1369601 for tiny", res.Params)
	}
	// The reference's flops_per_sample for tiny: vision_matmul + vision_attn, text_matmul + text_attn.
	if res.FlopsImage != 51937280+4326400 || res.FlopsText != 25198592+1048576 {
		t.Errorf("flops per image %d, per text %d", res.FlopsImage, res.FlopsText)
	}
	if math.Abs(res.ImagesPerSec-4/res.ImageBatchMedian) > 0.01*res.ImagesPerSec+0.01 ||
		math.Abs(res.TextsPerSec-4/res.TextBatchMedian) > 0.01*res.TextsPerSec+0.01 {
		t.Errorf("images/s %v for batch time %v, texts/s %v for %v", res.ImagesPerSec, res.ImageBatchMedian,
			res.TextsPerSec, res.TextBatchMedian)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"images_per_s", "texts_per_s", "peak_rss_mib", "image_batch_median_s",
		"text_batch_median_s", "image_gflops", "text_gflops"} {
		if v, ok := fields[k].(float64); !ok || !(v > 0) {
			t.Errorf("JSON field %s = %v, want a positive number", k, fields[k])
		}
	}
	if fields["mode"] != "inference" || fields["batch"] != 4.0 {
		t.Errorf("mode %v, batch %v", fields["mode"], fields["batch"])
	}
}

func TestRunInferenceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"unknown preset", Options{Preset: "huge"}, "preset"},
		{"negative steps", Options{Preset: "tiny", Steps: -1}, "negative"},
		{"bad size", Options{Preset: "tiny", Sets: []string{"vision.width=-3"}}, "width"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunInference(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestBenchPeerHarness runs the side-by-side harness's own tests (scripts/test_bench_peer.py:
// its BLAS checks, environments and the cases' flags; where torch is installed, the reference's
// parsing of them too), so that `go test` covers the script `make bench BENCH_PEER=1` runs. The
// system Python, as the harness runs: the reference's torch is Debian's.
func TestBenchPeerHarness(t *testing.T) {
	py := testenv.Command(t, "/usr/bin/python3", "apt-get install python3")
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "test_bench_peer.py")
	cmd := exec.Command(py, script)
	if testing.Short() { // the race run: the torch import (seconds) once is enough
		cmd.Env = append(os.Environ(), "BENCH_PEER_TEST_SHORT=1")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}
