#!/usr/bin/python3
"""Side-by-side training throughput: the PyTorch reference and clipgo, alternately.

For each preset, runs `clip_step.py --preset P --threads N` (A) and `clipgo bench --preset P
--threads N` (B) as A B A B ... for --rounds rounds, one process at a time, measures each
process's peak RSS with wait4 (ru_maxrss), and prints every JSON line, then one summary row per
preset: medians over rounds of samples/s, MFU and peak RSS, and clipgo/reference ratios. The
reference's MFU is against torch's own sgemm peak (sgemm_ceiling.py at n=1024, same threads);
clipgo's against the OpenBLAS peak it measures in-process.

Usage: bench_peer.py --clipgo bin/clipgo --peers ../shared/peers [--threads 2] [--rounds 3]
       [--presets tiny small]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(cmd):
    """Runs cmd, returns (the last JSON line it printed, its peak RSS in MiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("bench_peer: %s exited with %d" % (" ".join(cmd), p.returncode))
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit("bench_peer: %s printed no JSON line" % " ".join(cmd))
    return json.loads(lines[-1]), ru.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipgo", default="bin/clipgo")
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--presets", nargs="+", default=["tiny", "small"])
    a = ap.parse_args()
    ref = os.path.join(a.peers, "clip_step.py")
    ceil, _ = run([a.python, os.path.join(a.peers, "sgemm_ceiling.py"), "--threads", str(a.threads),
                   "--sizes", "1024", "--reps", "10"])
    print("torch sgemm", json.dumps(ceil), flush=True)
    rows = []
    for preset in a.presets:
        r = {"ref": [], "go": []}
        for i in range(a.rounds):
            for side, cmd in (("ref", [a.python, ref, "--preset", preset, "--threads", str(a.threads)]),
                              ("go", [a.clipgo, "bench", "--preset", preset, "--threads", str(a.threads)])):
                out, rss = run(cmd)
                out["wait4_peak_rss_mib"] = round(rss, 1)
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
    hdr = ("preset", "clipgo samples/s", "reference samples/s", "ratio", "clipgo MFU (own peak)",
           "clipgo MFU (torch peak)", "reference MFU (torch peak)", "clipgo peak RSS MiB", "reference peak RSS MiB",
           "RSS ratio")
    print("torch sgemm peak (n=1024, %d threads): %.1f GFLOP/s" % (a.threads, ceil["gflops_median"]))
    print(" | ".join(hdr))
    for row in rows:
        print("%s | %.1f | %.1f | %.2fx | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.2fx" % (
            row[0], row[1], row[2], row[3], 100 * row[4], 100 * row[9], 100 * row[5], row[6], row[7], row[8]))


if __name__ == "__main__":
    main()
