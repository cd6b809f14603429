#!/usr/bin/env python3
"""ablation_table.py: the Markdown table of scripts/ablation.sh (make ablation).

One row per arm of the arms file that has its retrieval JSON: CLIP_benchmark's recalls of the
arm's best checkpoint on the held-out split, the step that checkpoint is from, and the arm's
wall time (summed over resumed invocations) with the threads it ran on. The last column is
text->image R@10 over the plain arm's with the same number of steps. Standard library only.
"""
import argparse
import json
import os


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def best_step(run):
    """best_step returns the step of the run's best validation (metrics.jsonl's best flag)."""
    best = None
    for line in (read(os.path.join(run, "metrics.jsonl"), "") or "").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("best"):
            best = rec.get("step")
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arms", required=True, help="the arms file (tab-separated)")
    ap.add_argument("--out-dir", required=True, help="scripts/ablation.sh's OUT")
    args = ap.parse_args()
    arms = []
    for line in read(args.arms).splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, steps, sets, desc = (line.split("\t") + ["", "", "", ""])[:4]
        arms.append((name, int(steps), sets, desc))
    rows, plain = [], {}
    for name, steps, sets, desc in arms:
        run = os.path.join(args.out_dir, name)
        m = read(os.path.join(run, "eval", "retrieval.json"))
        if m is None:
            continue
        r = json.loads(m)["metrics"]
        wall = sum(int(x) for x in (read(os.path.join(run, "wall-seconds"), "") or "").split())
        threads = (read(os.path.join(run, "threads"), "?") or "?").strip()
        rows.append((name, steps, sets, desc, r, best_step(run), wall, threads))
        if name.startswith("plain"):  # the plain recipe at this many steps
            plain[steps] = r["image_retrieval_recall@10"]
    print("| arm | steps | best step | t→i R@1 | t→i R@5 | t→i R@10 | i→t R@1 | i→t R@5 | i→t R@10 | t→i R@10 / plain | wall | overrides |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, steps, sets, desc, r, best, wall, threads in rows:
        ratio = r["image_retrieval_recall@10"] / plain[steps] if plain.get(steps) else float("nan")
        cells = [name, str(steps), str(best)]
        cells += ["%.3f" % r["image_retrieval_recall@%d" % k] for k in (1, 5, 10)]
        cells += ["%.3f" % r["text_retrieval_recall@%d" % k] for k in (1, 5, 10)]
        cells += ["%.2f×" % ratio, "%d min %02d s (%s thr.)" % (wall // 60, wall % 60, threads), "`%s`" % sets if sets != "-" else "—"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
