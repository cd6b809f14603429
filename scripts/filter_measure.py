#!/usr/bin/python3
"""Score the filter on corrupted captions (docs/filtering.md).

Usage: filter_measure.py CORRUPTED.tsv FILTERED_DIR [--png scores_by_pair.png]

CORRUPTED.tsv is what corrupt_captions.py wrote ("image<TAB>caption now there"); FILTERED_DIR
is `clipgo filter`'s output (scores.jsonl, dropped.jsonl). A pair is corrupted when its
(image, caption) is in CORRUPTED.tsv (the image named without its extension, as the prepared
dataset keys it). Prints one JSON object: the pairs scored, the corrupted among them, the pairs
dropped for their CLIP score, and the filter's precision and recall at catching corrupted
pairs; with --png, draws the score histograms of clean and corrupted pairs (matplotlib).
"""
import argparse
import json
import os


def stem(name):
    return os.path.splitext(name)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corrupted")
    ap.add_argument("filtered")
    ap.add_argument("--png")
    a = ap.parse_args()
    bad = set()
    for line in open(a.corrupted, encoding="utf-8"):
        img, cap = line.rstrip("\n").split("\t", 1)
        bad.add((stem(img), cap.strip()))
    scores = [json.loads(l) for l in open(os.path.join(a.filtered, "scores.jsonl"), encoding="utf-8")]
    is_bad = [(s["key"], s["text"].strip()) in bad for s in scores]
    dropped = set()
    for l in open(os.path.join(a.filtered, "dropped.jsonl"), encoding="utf-8"):
        d = json.loads(l)
        if d["reason"] == "clip_score":
            dropped.add((d["key"], d["caption"]))
    caught = sum(1 for s, b in zip(scores, is_bad) if b and (s["key"], s["caption"]) in dropped)
    n_bad = sum(is_bad)
    out = {"pairs": len(scores), "corrupted": n_bad, "dropped_for_score": len(dropped), "corrupted_dropped": caught,
           "precision": caught / len(dropped) if dropped else None, "recall": caught / n_bad if n_bad else None,
           "corrupted_share": n_bad / len(scores) if scores else None}
    print(json.dumps(out, indent=2))
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        summary = json.load(open(os.path.join(a.filtered, "filter.json"), encoding="utf-8"))
        clean = [s["score"] for s, b in zip(scores, is_bad) if not b]
        corrupt = [s["score"] for s, b in zip(scores, is_bad) if b]
        fig, ax = plt.subplots(figsize=(8.4, 3.8), dpi=100)
        lo, hi = min(clean + corrupt), max(clean + corrupt)
        bins = [lo + (hi - lo) * i / 60 for i in range(61)]
        ax.hist(clean, bins=bins, alpha=0.5, label=f"original pairs ({len(clean)})", color="#0072b2")
        ax.hist(corrupt, bins=bins, alpha=0.5, label=f"shuffled pairs ({len(corrupt)})", color="#d55e00")
        if summary.get("score_threshold") is not None:
            ax.axvline(summary["score_threshold"], color="black", linestyle="--", label=f"threshold {summary['score_threshold']:.3f}")
        ax.set_xlabel("CLIP score (cosine of image and caption embeddings)")
        ax.set_ylabel("pairs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.png)


if __name__ == "__main__":
    main()
