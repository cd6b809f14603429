#!/usr/bin/python3
"""Per-op profiles of clipgo's and the PyTorch reference's training step, side by side.

For each configuration and thread count, runs
  * clipgo: `clipgo bench ... --cpuprofile F` (a pprof CPU profile of the timed steps alone),
    then `go tool pprof -traces` on it, and groups every sample (CPU time, all threads);
  * the reference: scripts/profile_peer.py (torch.profiler over the same steps of
    ../shared/peers/clip_step.py, on the OpenMP OpenBLAS, checked as scripts/bench_peer.py does),
    grouped the same way (wall time of the calling thread);
and prints, per configuration, a Markdown table of the share of step time per op group for both
sides, then each side's heaviest functions/ops. Raw JSON and the .pprof files go to --out.

Op groups and how pprof function names and torch op names map into them: GO_LEAF, GO_SEMANTIC and GO_GENERIC below,
SEMANTIC/GENERIC in profile_peer.py, and docs/performance.md.

Usage: profile_steps.py [--clipgo bin/clipgo] [--go go] [--peers ../shared/peers]
       [--configs tiny small recipe vitb32] [--threads 1 2] [--out bin/profile]
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_configs  # noqa: E402  (the configurations, as flags of both sides)
import bench_peer  # noqa: E402  (the BLAS checks and environments of the reference comparison)

# PROFILE: per model of bench_configs.MODELS (the table scripts/bench_peer.py compares too), the
# batch (0: the model's, else the preset's), timed steps and warm-up steps profiled; ViT-B/32 at
# batch 8. CONFIGS: clipgo bench flags, clip_step.py flags, timed steps, warm-up steps.
PROFILE = {"tiny": (0, 20, 2), "small": (0, 5, 1), "recipe": (0, 10, 2), "vitb32": (8, 2, 1)}
CONFIGS = {name: bench_configs.flags(name, batch) + (steps, warmup)
           for name, (batch, steps, warmup) in PROFILE.items()}

# GO_LEAF, GO_SEMANTIC and GO_GENERIC group a pprof sample by its stack. Runtime frames at the
# leaf (allocation and GC, scheduling and thread wake-ups) count as such wherever they run;
# otherwise the nearest frame that names a model operation decides (so that a clear() of
# gradient rows inside the embedding's backward counts as the embedding); otherwise generic
# clears and copies, the gorgonia executor, other.
THREADS = "threads (scheduling, wake-ups, waits; BLAS's own threads)"
GO_LEAF = [
    ("allocation", r"^runtime\.(malloc|newobject|makeslice|growslice|nextFreeFast|(.*\.)?alloc|"
                   r"gc|scanobject|scanblock|markroot|greyobject|findObject|bgsweep|sweepone|wbBuf|heapBits|"
                   r"typePointers|bulkBarrier|spanOf|pageIndexOf|\(\*mspan\)|\(\*mheap\)|\(\*mcache\)|"
                   r"\(\*gcWork\)|\(\*mcentral\))"),
    (THREADS, r"^runtime\.(futex|schedule|findRunnable|park_m|notesleep|"
                   r"notewakeup|usleep|osyield|stealWork|runqgrab|runqsteal|mcall|gopark|goready|ready|wakep|"
                   r"startm|stopm|netpoll|semrelease|semacquire|lock2|unlock2|procyield|checkTimers|resetspinning|"
                   r"gcstopm|mPark|exitsyscall|entersyscall|casgstatus|execute|goexit|newproc|runqput|globrunq)"),
]
GO_SEMANTIC = [
    ("AdamW", r"nn/optim\.\(\*AdamW\)"),
    ("gradient norm + finite check", r"nn/optim\.(GradNorm|GradsFinite)"),
    ("GEMM (matmul, conv patch embedding)", r"nn\.(gemm1|Gemm)\[|[Ss]gemm"),
    ("attention softmax", r"nn\.(softmaxRow|expNonPos)"),
    ("layer norm", r"nn\.(\(\*lnState|rowStats|layerNorm)"),
    ("GELU", r"nn\.(gelu|quickGELU|interp|outside|geluCDF32|geluDeriv32)"),
    ("token embedding (gather + dense gradient)", r"nn\.embedding\["),
    ("loss (normalise, logits, cross-entropy)", r"fusion\.(logits|contrastiveLoss|softmaxCE|softmax|multiCE|"
                                                r"localContrastiveLoss)|nn\.(l2Normalize|rowNorm)"),
    ("data conversion (copy, layout)", r"nn\.(\(\*attention|im2col|gatherWindows|scatterWindows|parallelCopy|"
                                       r"classTokens|gatherRows|concatRows|store|tap)"),
    ("bias/residual add, reductions", r"nn\.(addPeriodic|periodicRowSum|fillRows|add\[|addRows)|"
                                      r"gorgonia\.org/tensor/internal/execution\.(Add|Sum)|tensor\.StdEng\.(Add|Sum)"),
]
GO_GENERIC = [
    ("allocation", r"^runtime\.memclr"),
    ("data conversion (copy, layout)", r"^runtime\.memmove|gorgonia\.org/tensor\.\(\*Dense\)\.(Clone|Copy)|copyDense"),
    ("other (autograd engine, dispatch, Python)", r"gorgonia\.org/gorgonia\."),
]
OTHER = "other (autograd engine, dispatch, Python)"
ORDER = ["GEMM (matmul, conv patch embedding)", "attention softmax", "layer norm", "GELU",
         "token embedding (gather + dense gradient)", "AdamW", "gradient norm + finite check",
         "loss (normalise, logits, cross-entropy)", "bias/residual add, reductions", "data conversion (copy, layout)",
         "allocation", THREADS, OTHER]
SKIP = re.compile(r"^runtime\.(asyncPreempt|cgocall|sigtramp|sigprof)|_Cfunc_|netlib\.Implementation")


def go_group(stack):
    """The group of one pprof stack, leaf first."""
    frames = [f for f in stack if not SKIP.search(f)] or stack
    leaf = frames[0]
    if re.match(r"runtime\.(memclr|memmove)", leaf) and len(frames) > 1 and re.search(GO_LEAF[0][1], frames[1]):
        leaf = frames[1]  # clearing or copying inside the allocator or GC: allocation; elsewhere its caller's
    for name, rx in GO_LEAF:
        if re.search(rx, leaf):
            return name
    if any(f == "runtime._ExternalCode" for f in stack):
        # C code on a thread Go did not start: OpenBLAS's own (idle, yielding) thread pool.
        return THREADS
    for f in stack:
        for name, rx in GO_SEMANTIC:
            if re.search(rx, f):
                return name
    for f in stack:
        for name, rx in GO_GENERIC:
            if re.search(rx, f):
                return name
    return OTHER


def parse_traces(text):
    """(seconds, [frames leaf first]) per sample stack of `go tool pprof -traces`."""
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----------+"):
            if cur and cur[1]:
                out.append(cur)
            cur = (0.0, [])
            continue
        if cur is None:
            continue
        m = re.match(r"^\s+([0-9.]+)(ns|us|µs|ms|s)\s+(\S.*)$", line)
        if m:
            unit = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
            cur = (float(m.group(1)) * unit, [m.group(3).strip()])
        elif line.strip() and cur[1]:
            cur[1].append(line.strip())
    if cur and cur[1]:
        out.append(cur)
    return out


def go_profile(a, cfg, threads, out_dir, env):
    go_args, _, steps, warmup = CONFIGS[cfg]
    steps, warmup = a.steps or steps, warmup if a.warmup is None else a.warmup
    prof = os.path.join(out_dir, "clipgo-%s-t%d.pprof" % (cfg, threads))
    cmd = [a.clipgo, "bench"] + go_args + ["--threads", str(threads), "--steps", str(steps), "--warmup",
                                           str(warmup), "--sgemm-n", "-1", "--cpuprofile", prof]
    res, rss, mapped = bench_peer.run(cmd, env)
    bench_peer.check_clipgo_blas(mapped, a.openmp_dir)
    tr = subprocess.run([a.go, "tool", "pprof", "-traces", a.clipgo, prof], capture_output=True, text=True,
                        check=True).stdout
    groups, funcs = {}, {}
    for sec, stack in parse_traces(tr):
        g = go_group(stack)
        groups[g] = groups.get(g, 0.0) + sec
        f = next((x for x in stack if not SKIP.search(x)), stack[0])
        f = re.sub(r"\[go\.shape\.float32\]", "", f)
        e = funcs.setdefault(f, {"func": f, "self_s": 0.0, "groups": {}})
        e["self_s"] += sec
        e["groups"][g] = e["groups"].get(g, 0.0) + sec
    top = sorted(funcs.values(), key=lambda e: -e["self_s"])[:a.top]
    for e in top:
        e["self_s"] = round(e["self_s"], 4)
        e["group"] = max(e.pop("groups").items(), key=lambda kv: kv[1])[0]
    return {"side": "clipgo", "config": cfg, "threads": threads, "steps": steps, "warmup": warmup,
            "step_times_s": res.get("step_times_s"), "samples_per_s": res.get("samples_per_s"),
            "peak_rss_mib": round(rss, 1), "total_s": round(sum(groups.values()), 4),
            "groups_s": {k: round(v, 4) for k, v in groups.items()}, "funcs": top, "pprof": prof,
            "loadavg_1m": res.get("loadavg_1m"), "blas_mapped": mapped,
            "basis": "CPU time of all threads over the timed steps (pprof samples)"}


def ref_profile(a, cfg, threads, env):
    _, ref_args, steps, warmup = CONFIGS[cfg]
    steps, warmup = a.steps or steps, warmup if a.warmup is None else a.warmup
    cmd = [a.python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_peer.py"), "--peers",
           a.peers, "--top", str(a.top)] + ref_args + ["--threads", str(threads), "--steps", str(steps),
                                                       "--warmup", str(warmup)]
    res, rss, mapped = bench_peer.run(cmd, env)
    bench_peer.check_reference_blas("profile_peer.py %s" % cfg, res, mapped, a.openmp_dir)
    res.update(config=cfg, peak_rss_mib=round(rss, 1), blas_mapped=mapped)
    return res


def pct(groups, total):
    return {k: 100.0 * v / total for k, v in groups.items()} if total > 0 else {}


def table(go, ref):
    gp, rp = pct(go["groups_s"], go["total_s"]), pct(ref["groups_s"], ref["total_s"])
    rows = ["| op group | clipgo % of CPU time | reference % of wall time |", "|---|---:|---:|"]
    for g in ORDER + sorted((set(gp) | set(rp)) - set(ORDER)):
        if g in gp or g in rp:
            rows.append("| %s | %s | %s |" % (g, "%.1f" % gp[g] if g in gp else "–",
                                             "%.1f" % rp[g] if g in rp else "–"))
    return "\n".join(rows)


def top_table(rows, key, total):
    out = ["| %s | group | %% |" % key, "|---|---|---:|"]
    for r in rows:
        out.append("| `%s` | %s | %.1f |" % (r[key], r["group"], 100.0 * r["self_s"] / total))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipgo", default="bin/clipgo")
    ap.add_argument("--go", default="go")
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--configs", nargs="+", default=["tiny", "small", "recipe", "vitb32"], choices=sorted(CONFIGS))
    ap.add_argument("--threads", nargs="+", type=int, default=[2])
    ap.add_argument("--steps", type=int, default=0, help="profiled steps for every configuration (0: its own)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps for every configuration")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", default="bin/profile")
    ap.add_argument("--openmp-dir", default=bench_peer.DEFAULT_OPENMP_DIR)
    a = ap.parse_args()
    a.openmp_dir = os.path.abspath(a.openmp_dir)
    a.peers = os.path.abspath(a.peers)
    os.makedirs(a.out, exist_ok=True)
    bench_peer.check_openmp_dir(a.openmp_dir, a.python)
    ref_env, go_env = bench_peer.reference_env(a.openmp_dir), bench_peer.clipgo_env(a.openmp_dir)
    done = []
    for cfg in a.configs:
        for t in a.threads:
            go = go_profile(a, cfg, t, a.out, go_env)
            ref = ref_profile(a, cfg, t, ref_env)
            done.append(("%s, %d thr." % (cfg, t), go, ref))
            with open(os.path.join(a.out, "%s-t%d.json" % (cfg, t)), "w") as f:
                json.dump({"clipgo": go, "reference": ref}, f, indent=1)
            print("\n### %s, %d thread%s (clipgo %d timed steps after %d warm-up; load average %.1f / %.1f)\n"
                  % (cfg, t, "s" if t > 1 else "", go["steps"], go["warmup"], go["loadavg_1m"] or 0,
                     ref["loadavg_1m"]))
            print("step times: clipgo %s s (pprof CPU %.2f s); reference %s s\n"
                  % (go["step_times_s"], go["total_s"], ref["step_wall_s"]))
            print(table(go, ref) + "\n")
            print(top_table(go["funcs"], "func", go["total_s"]) + "\n")
            print(top_table(ref["ops"], "op", ref["total_s"]), flush=True)
    print("\n### All configurations: % of step time per op group, clipgo / reference\n")
    print(summary(done), flush=True)


def summary(done):
    """One Markdown table: a row per op group, a column per (configuration, threads), each cell
    "clipgo / reference" in percent."""
    shares = [(name, pct(go["groups_s"], go["total_s"]), pct(ref["groups_s"], ref["total_s"]))
              for name, go, ref in done]
    rows = ["| op group | " + " | ".join(n for n, _, _ in shares) + " |",
            "|---|" + "---:|" * len(shares)]
    for g in ORDER:
        if any(g in gp or g in rp for _, gp, rp in shares):
            cell = lambda d: "%.1f" % d[g] if g in d else "–"
            rows.append("| %s | " % g + " | ".join("%s / %s" % (cell(gp), cell(rp)) for _, gp, rp in shares) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
