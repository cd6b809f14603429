#!/usr/bin/python3
"""Side-by-side throughput: the PyTorch reference and clipgo, alternately.

For each case of CASES (--configs), runs the reference (A) and clipgo (B) as A B A B ... for
--rounds rounds, one process at a time, measures each process's peak RSS with wait4 (ru_maxrss),
and prints every JSON line, then the summary tables: medians over rounds and clipgo/reference
ratios. The models are bench_configs.MODELS (the table scripts/profile_steps.py profiles too).

  training cases (tiny, small, recipe, vitb32): `clip_step.py FLAGS` against `clipgo bench FLAGS`,
    full training steps; samples/s, MFU and peak RSS. The reference's MFU is against torch's own
    sgemm peak (sgemm_ceiling.py at n=1024, same threads); clipgo's against the OpenBLAS peak it
    measures in-process (and against torch's).
  inference cases (infer-small, infer-vitb32): scripts/peers/infer_peer.py (clip_step.py's model,
    encode_image and encode_text under torch.no_grad in eval mode) against `clipgo bench --mode
    inference` (fusion.Encoder, the path evaluation and embed use); images/s and texts/s, each
    tower timed alone, and peak RSS.

The two sides run on different builds of OpenBLAS, on purpose (see BLAS below): the reference
and sgemm_ceiling.py on the OpenMP build (LD_LIBRARY_PATH=--openmp-dir for those processes
alone), clipgo on the system default (the pthread build that libopenblas-dev selects). The
harness refuses to report when the OpenMP build is missing or a reference process did not run
on it, and records the BLAS each process mapped ("blas_mapped" in every JSON line).

Usage: bench_peer.py --clipgo bin/clipgo --peers ../shared/peers [--threads 2] [--rounds 3]
       [--configs tiny small recipe vitb32 infer-small infer-vitb32] [--steps N] [--warmup N]
       [--openmp-dir /usr/lib/<multiarch>/openblas-openmp] [--native-kernels]
(--steps/--warmup override every case's, for a quick check that each case runs: --rounds 1
--steps 1 --warmup 0.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_configs  # noqa: E402  (the models compared, as flags of both sides; profile_steps.py's too)

# BLAS: why the two processes need different OpenBLAS builds.
#
# Debian's python3-torch is built with OpenMP and parallelises with its own OpenMP threads; it
# calls OpenBLAS for its matrix products. clipgo's build dependency libopenblas-dev makes the
# pthread OpenBLAS the system default (libblas.so.3 / libopenblas.so.0 alternatives). On the
# pthread build, torch's OpenMP threads and OpenBLAS's own thread pool oversubscribe the cores
# and the reference runs ~2.6x slower (tiny: 156 instead of 407 samples/s, 2026-12-06), so a
# comparison against it flatters clipgo. On the OpenMP build (libopenblas0-openmp) OpenBLAS
# shares torch's OpenMP runtime and thread count: that is how torch is meant to run.
#
# clipgo must stay on the pthread build: it parallelises with goroutines and calls OpenBLAS
# single-threaded from many of them; on the OpenMP build every goroutine's BLAS call starts (or
# joins) an OpenMP team on its own OS thread, and clipgo falls to ~0.35x. Hence the OpenMP
# directory goes on LD_LIBRARY_PATH of the reference processes only, and is removed from
# clipgo's environment should the caller have set it.

# CASES: name -> (mode, model of bench_configs.MODELS, batch (0: the model's, else the preset's),
# timed steps or batches per tower (0: the preset's), warm-up (None: the preset's)). The presets'
# defaults agree on both sides (tiny: batch 64, 30 steps, 5 warm-up; small: 128, 10, 2). ViT-B/32
# trains at batch 32 (1.4 TFLOP a step; peak RSS 4.5 GiB clipgo, 4.8 GiB the reference over these
# steps, 2026-12-07, docs/performance.md "Memory") for 3 steps after 1: a round of both sides is
# about 2 minutes on 2 idle cores.
CASES = {
    "tiny": ("training", "tiny", 0, 0, None),
    "small": ("training", "small", 0, 0, None),
    "recipe": ("training", "recipe", 0, 20, 3),
    "vitb32": ("training", "vitb32", 32, 3, 1),
    "infer-small": ("inference", "small", 64, 10, 2),
    "infer-vitb32": ("inference", "vitb32", 32, 5, 1),
}

MULTIARCH = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
DEFAULT_OPENMP_DIR = os.environ.get("CLIPGO_OPENBLAS_OPENMP_DIR") or "/usr/lib/%s/openblas-openmp" % MULTIARCH
INSTALL_HINT = ("install libopenblas0-openmp (as root: apt-get install -y --no-install-recommends "
                "libopenblas0-openmp, or `make test-deps`)")


def die(msg):
    sys.exit("bench_peer: " + msg)


def is_blas_path(p):
    b = os.path.basename(p)
    return "blas" in b or "libmkl" in b


def blas_kind(path):
    """The OpenBLAS build a library path belongs to (Debian layout), or "other"."""
    for kind in ("openmp", "pthread", "serial"):
        if "/openblas-%s/" % kind in path:
            return kind
    return "other"


def within(path, d):
    """Whether path (resolved) lies in directory d (resolved)."""
    return os.path.realpath(path).startswith(os.path.realpath(d).rstrip("/") + "/")


def reference_env(openmp_dir):
    """The environment of a reference process: the OpenMP OpenBLAS first on the library path."""
    env = dict(os.environ)
    rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p and p != openmp_dir]
    env["LD_LIBRARY_PATH"] = ":".join([openmp_dir] + rest)
    return env


def clipgo_env(openmp_dir):
    """clipgo's environment: the caller's, without the OpenMP OpenBLAS on the library path."""
    env = dict(os.environ)
    rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(":")
            if p and os.path.realpath(p) != os.path.realpath(openmp_dir)]
    if rest:
        env["LD_LIBRARY_PATH"] = ":".join(rest)
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


def check_openmp_dir(openmp_dir, python):
    """Refuses unless openmp_dir holds an OpenBLAS whose openblas_get_parallel() says OpenMP (2)."""
    lib = os.path.join(openmp_dir, "libopenblas.so.0")
    if not os.path.isdir(openmp_dir) or not os.path.exists(lib):
        die("%s not found: the PyTorch reference must run on the OpenMP OpenBLAS; %s" % (lib, INSTALL_HINT))
    probe = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
             "l.openblas_get_config.restype = ctypes.c_char_p; "
             "print(l.openblas_get_parallel(), l.openblas_get_config().decode())")
    p = subprocess.run([python, "-c", probe, lib], env=reference_env(openmp_dir),
                       capture_output=True, text=True)
    if p.returncode != 0:
        die("cannot load %s: %s" % (lib, p.stderr.strip()))
    par, _, cfg = p.stdout.strip().partition(" ")
    if par != "2":
        die("%s is not the OpenMP build of OpenBLAS (openblas_get_parallel() = %s, %s); %s"
            % (lib, par, cfg, INSTALL_HINT))
    return cfg


def check_reference_blas(name, out, mapped, openmp_dir):
    """Refuses unless a reference process ran on the OpenMP OpenBLAS in openmp_dir: its JSON
    `blas` field (the path of the BLAS torch loaded, from /proc/self/maps) lies there and no
    other BLAS was mapped. Returns the field."""
    blas = out.get("blas")
    if not blas or blas == "?" or not within(blas, openmp_dir):
        die("%s ran on BLAS %r, not on the OpenMP OpenBLAS in %s: refusing to report (on the "
            "pthread OpenBLAS torch's OpenMP threads and OpenBLAS's threads oversubscribe the cores). "
            "The reference process needs LD_LIBRARY_PATH=%s; %s"
            % (name, blas, openmp_dir, openmp_dir, INSTALL_HINT))
    foreign = [p for p in mapped if not within(p, openmp_dir) and "libgomp" not in p]
    if foreign:
        die("%s mapped BLAS libraries outside %s: %s: refusing to report" % (name, openmp_dir, ", ".join(foreign)))
    return blas


def check_clipgo_blas(mapped, openmp_dir):
    """Refuses when clipgo ran on the OpenMP OpenBLAS (0.35x: goroutines each start OpenMP teams)."""
    bad = [p for p in mapped if blas_kind(p) == "openmp" or within(p, openmp_dir)]
    if bad:
        die("clipgo mapped the OpenMP OpenBLAS (%s): it must run on the pthread build; "
            "unset LD_LIBRARY_PATH for it" % ", ".join(bad))


class MapsWatcher(threading.Thread):
    """Samples /proc/PID/maps while the process runs and collects the BLAS libraries mapped
    (and libgomp): the build a process really ran on, whatever its own report says."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.seen, self.stop = pid, set(), threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with open("/proc/%d/maps" % self.pid) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 6 and parts[5].startswith("/") and (
                                is_blas_path(parts[5]) or "libgomp" in parts[5]):
                            self.seen.add(os.path.realpath(parts[5]))
            except OSError:
                return
            # Fast until the loader has mapped the libraries, then now and then (late dlopens).
            self.stop.wait(0.5 if any(is_blas_path(p) for p in self.seen) else 0.01)


def run(cmd, env):
    """Runs cmd with env; returns (the last JSON line it printed, its peak RSS in MiB, the BLAS
    libraries it mapped)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    w = MapsWatcher(p.pid)
    w.start()
    out = p.stdout.read()  # EOF at exit; the child stays a zombie (same pid) until wait4 below
    w.stop.set()
    w.join()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        die("%s exited with %d" % (" ".join(cmd), p.returncode))
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        die("%s printed no JSON line" % " ".join(cmd))
    return json.loads(lines[-1]), ru.ru_maxrss / 1024.0, sorted(w.seen)


def describe(mapped, fallback):
    libs = [p for p in mapped if is_blas_path(p) and "libopenblas" in os.path.basename(p)] or \
           [p for p in mapped if is_blas_path(p)]
    if not libs:
        return "%s (no BLAS library mapped)" % fallback
    return ", ".join("%s (%s)" % (p, blas_kind(p)) for p in libs)


def commands(case, a, infer_peer):
    """(reference command, clipgo command) of one case of CASES, --steps/--warmup applied."""
    mode, model, batch, steps, warmup = CASES[case]
    steps = a.steps or steps
    warmup = warmup if a.warmup is None else a.warmup
    go, ref = bench_configs.flags(model, batch, steps, warmup)
    threads = ["--threads", str(a.threads)]
    if mode == "inference":
        return ([a.python, infer_peer, "--peers", a.peers] + ref + threads,
                [a.clipgo, "bench", "--mode", "inference"] + go + threads)
    return [a.python, os.path.join(a.peers, "clip_step.py")] + ref + threads, [a.clipgo, "bench"] + go + threads


def rate(x):
    """A throughput with three significant digits at least (ViT-B/32 trains a few samples/s)."""
    return "%.1f" % x if x >= 10 else "%.2f" % x


def training_row(case, r, ceil):
    """The summary of one training case: medians over rounds, clipgo/reference ratios."""
    med = lambda side, key: statistics.median(o[key] for o in r[side])
    go_sps, ref_sps = med("go", "samples_per_s"), med("ref", "samples_per_s")
    go_rss, ref_rss = med("go", "wait4_peak_rss_mib"), med("ref", "wait4_peak_rss_mib")
    return "%s | %s | %s | %.2fx | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.2fx" % (
        case, rate(go_sps), rate(ref_sps), go_sps / ref_sps, 100 * med("go", "mfu"),
        100 * med("go", "achieved_gflops") / ceil, 100 * med("ref", "achieved_gflops") / ceil,
        go_rss, ref_rss, go_rss / ref_rss)


def inference_row(case, r):
    """The summary of one inference case: medians over rounds of images/s and texts/s, ratios."""
    med = lambda side, key: statistics.median(o[key] for o in r[side])
    cells = [case, str(r["go"][0]["batch"])]
    for key in ("images_per_s", "texts_per_s"):
        go, ref = med("go", key), med("ref", key)
        cells += [rate(go), rate(ref), "%.2fx" % (go / ref)]
    go_rss, ref_rss = med("go", "wait4_peak_rss_mib"), med("ref", "wait4_peak_rss_mib")
    cells += ["%.0f" % go_rss, "%.0f" % ref_rss, "%.2fx" % (go_rss / ref_rss)]
    return " | ".join(cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipgo", default="bin/clipgo")
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", "--presets", nargs="+", default=list(CASES), choices=list(CASES),
                    help="cases to compare, in this order (default: all, %(default)s)")
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps (training) or batches per tower (inference) for every case (0: each case's)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps or batches for every case")
    ap.add_argument("--openmp-dir", default=DEFAULT_OPENMP_DIR,
                    help="directory of the OpenMP OpenBLAS (libopenblas0-openmp), put on the reference "
                         "processes' LD_LIBRARY_PATH (default %(default)s; env CLIPGO_OPENBLAS_OPENMP_DIR)")
    ap.add_argument("--native-kernels", action="store_true",
                    help="unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for both sides, so that OpenBLAS picks "
                         "its kernels for this CPU (machines that set OPENBLAS_CORETYPE=Haswell otherwise run "
                         "AVX2 kernels on an AVX-512 CPU, both sides alike)")
    a = ap.parse_args()
    if a.native_kernels:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            os.environ.pop(k, None)
    openmp_dir = os.path.abspath(a.openmp_dir)
    cfg = check_openmp_dir(openmp_dir, a.python)
    ref_env, go_env = reference_env(openmp_dir), clipgo_env(openmp_dir)
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s (both sides)" % (os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
          os.environ.get("OPENBLAS_L2_SIZE", "(unset)")), flush=True)
    print("reference BLAS: LD_LIBRARY_PATH=%s (%s); clipgo: LD_LIBRARY_PATH=%s"
          % (ref_env["LD_LIBRARY_PATH"], cfg, go_env.get("LD_LIBRARY_PATH", "(unset)")), flush=True)

    infer_peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "infer_peer.py")
    ceil, _, mapped = run([a.python, os.path.join(a.peers, "sgemm_ceiling.py"), "--threads", str(a.threads),
                           "--sizes", "1024", "--reps", "10"], ref_env)
    check_reference_blas("sgemm_ceiling.py", ceil, mapped, openmp_dir)
    ceil["blas_mapped"] = mapped
    print("torch sgemm", json.dumps(ceil), flush=True)
    rows, blas = {"training": [], "inference": []}, {"ref": set(), "go": set()}
    for case in a.configs:
        r = {"ref": [], "go": []}
        ref_cmd, go_cmd = commands(case, a, infer_peer)
        print("%s: reference %s\n%s: clipgo %s" % (case, " ".join(ref_cmd), case, " ".join(go_cmd)), flush=True)
        for i in range(a.rounds):
            for side, cmd, env in (("ref", ref_cmd, ref_env), ("go", go_cmd, go_env)):
                t0 = time.monotonic()
                out, rss, mapped = run(cmd, env)
                if side == "ref":
                    check_reference_blas("%s (%s)" % (os.path.basename(cmd[1]), case), out, mapped, openmp_dir)
                else:
                    check_clipgo_blas(mapped, openmp_dir)
                out["wait4_peak_rss_mib"] = round(rss, 1)
                out["wall_s"] = round(time.monotonic() - t0, 1)
                out["blas_mapped"] = mapped
                blas[side].add(describe(mapped, out.get("blas", "?")))
                print("%s %s round %d" % (case, side, i + 1), json.dumps(out), flush=True)
                r[side].append(out)
        if CASES[case][0] == "training":
            rows["training"].append(training_row(case, r, ceil["gflops_median"]))
        else:
            rows["inference"].append(inference_row(case, r))
    print("\n%d rounds each, A B alternating, %d threads; medians" % (a.rounds, a.threads))
    print("reference BLAS: %s" % "; ".join(sorted(blas["ref"])))
    print("clipgo BLAS: %s" % "; ".join(sorted(blas["go"])))
    if rows["training"]:
        print("\nTraining step (samples/s)")
        print("torch sgemm peak (n=1024, %d threads, %s): %.1f GFLOP/s"
              % (a.threads, blas_kind(ceil["blas"]), ceil["gflops_median"]))
        print(" | ".join(("config", "clipgo samples/s", "reference samples/s", "ratio", "clipgo MFU (own peak)",
                          "clipgo MFU (torch peak)", "reference MFU (torch peak)", "clipgo peak RSS MiB",
                          "reference peak RSS MiB", "RSS ratio")))
        for row in rows["training"]:
            print(row)
    if rows["inference"]:
        print("\nInference: encoders alone (clipgo fusion.Encoder; the reference under torch.no_grad, eval mode)")
        print(" | ".join(("config", "batch", "clipgo images/s", "reference images/s", "ratio", "clipgo texts/s",
                          "reference texts/s", "ratio", "clipgo peak RSS MiB", "reference peak RSS MiB",
                          "RSS ratio")))
        for row in rows["inference"]:
            print(row)

if __name__ == "__main__":
    main()
