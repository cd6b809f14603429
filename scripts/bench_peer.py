#!/usr/bin/python3
"""Side-by-side training throughput: the PyTorch reference and clipgo, alternately.

For each preset, runs `clip_step.py --preset P --threads N` (A) and `clipgo bench --preset P
--threads N` (B) as A B A B ... for --rounds rounds, one process at a time, measures each
process's peak RSS with wait4 (ru_maxrss), and prints every JSON line, then one summary row per
preset: medians over rounds of samples/s, MFU and peak RSS, and clipgo/reference ratios. The
reference's MFU is against torch's own sgemm peak (sgemm_ceiling.py at n=1024, same threads);
clipgo's against the OpenBLAS peak it measures in-process.

The two sides run on different builds of OpenBLAS, on purpose (see BLAS below): the reference
and sgemm_ceiling.py on the OpenMP build (LD_LIBRARY_PATH=--openmp-dir for those processes
alone), clipgo on the system default (the pthread build that libopenblas-dev selects). The
harness refuses to report when the OpenMP build is missing or a reference process did not run
on it, and records the BLAS each process mapped ("blas_mapped" in every JSON line).

Usage: bench_peer.py --clipgo bin/clipgo --peers ../shared/peers [--threads 2] [--rounds 3]
       [--presets tiny small] [--openmp-dir /usr/lib/<multiarch>/openblas-openmp]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import threading

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipgo", default="bin/clipgo")
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"])
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

    ref = os.path.join(a.peers, "clip_step.py")
    ceil, _, mapped = run([a.python, os.path.join(a.peers, "sgemm_ceiling.py"), "--threads", str(a.threads),
                           "--sizes", "1024", "--reps", "10"], ref_env)
    check_reference_blas("sgemm_ceiling.py", ceil, mapped, openmp_dir)
    ceil["blas_mapped"] = mapped
    print("torch sgemm", json.dumps(ceil), flush=True)
    rows, blas = [], {"ref": set(), "go": set()}
    for preset in a.presets:
        r = {"ref": [], "go": []}
        for i in range(a.rounds):
            for side, cmd, env in (
                    ("ref", [a.python, ref, "--preset", preset, "--threads", str(a.threads)], ref_env),
                    ("go", [a.clipgo, "bench", "--preset", preset, "--threads", str(a.threads)], go_env)):
                out, rss, mapped = run(cmd, env)
                if side == "ref":
                    check_reference_blas("clip_step.py --preset %s" % preset, out, mapped, openmp_dir)
                else:
                    check_clipgo_blas(mapped, openmp_dir)
                out["wait4_peak_rss_mib"] = round(rss, 1)
                out["blas_mapped"] = mapped
                blas[side].add(describe(mapped, out.get("blas", "?")))
                print("%s %s round %d" % (preset, side, i + 1), json.dumps(out), flush=True)
                r[side].append(out)
        med = lambda side, f: statistics.median(f(o) for o in r[side])
        go_sps, ref_sps = med("go", lambda o: o["samples_per_s"]), med("ref", lambda o: o["samples_per_s"])
        go_rss, ref_rss = med("go", lambda o: o["wait4_peak_rss_mib"]), med("ref", lambda o: o["wait4_peak_rss_mib"])
        rows.append((preset, go_sps, ref_sps, go_sps / ref_sps,
                     med("go", lambda o: o["mfu"]), med("ref", lambda o: o["achieved_gflops"]) / ceil["gflops_median"],
                     go_rss, ref_rss, go_rss / ref_rss,
                     med("go", lambda o: o["achieved_gflops"]) / ceil["gflops_median"]))
    print("\n%d rounds each, A B alternating, %d threads; medians" % (a.rounds, a.threads))
    print("reference BLAS: %s" % "; ".join(sorted(blas["ref"])))
    print("clipgo BLAS: %s" % "; ".join(sorted(blas["go"])))
    hdr = ("preset", "clipgo samples/s", "reference samples/s", "ratio", "clipgo MFU (own peak)",
           "clipgo MFU (torch peak)", "reference MFU (torch peak)", "clipgo peak RSS MiB", "reference peak RSS MiB",
           "RSS ratio")
    print("torch sgemm peak (n=1024, %d threads, %s): %.1f GFLOP/s"
          % (a.threads, blas_kind(ceil["blas"]), ceil["gflops_median"]))
    print(" | ".join(hdr))
    for row in rows:
        print("%s | %.1f | %.1f | %.2fx | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.2fx" % (
            row[0], row[1], row[2], row[3], 100 * row[4], 100 * row[9], 100 * row[5], row[6], row[7], row[8]))


if __name__ == "__main__":
    main()
