#!/usr/bin/python3
"""Corrupt an image–caption list for the filter measurement (docs/filtering.md).

Usage: corrupt_captions.py IN.tsv OUT.tsv CORRUPTED.tsv [--fraction 0.3] [--seed 0]

IN.tsv is Flickr-style "image#n<TAB>caption" lines. A seeded --fraction of the lines is chosen
and their captions are shuffled among them, so that each goes to another image's line (a
caption that lands back on its own image is swapped with a neighbour's). OUT.tsv is IN.tsv with
those captions; CORRUPTED.tsv lists the corrupted lines as "image<TAB>caption now there". Only
the standard library is used.
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("corrupted")
    ap.add_argument("--fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    lines = [l.rstrip("\n").split("\t", 1) for l in open(a.inp, encoding="utf-8") if l.strip()]
    image = [l[0].split("#", 1)[0] for l in lines]
    rng = random.Random(a.seed)
    chosen = sorted(rng.sample(range(len(lines)), round(a.fraction * len(lines))))
    caps = [lines[i][1] for i in chosen]
    rng.shuffle(caps)
    for j, i in enumerate(chosen):  # no caption back on its own image
        if image[chosen[j]] == image_of(caps[j], chosen, lines, image):
            k = (j + 1) % len(chosen)
            caps[j], caps[k] = caps[k], caps[j]
    with open(a.out, "w", encoding="utf-8") as out, open(a.corrupted, "w", encoding="utf-8") as bad:
        new = {i: c for i, c in zip(chosen, caps)}
        for i, (key, cap) in enumerate(lines):
            c = new.get(i, cap)
            out.write(f"{key}\t{c}\n")
            if i in new and c != cap:
                bad.write(f"{image[i]}\t{c}\n")


_origin = {}


def image_of(caption, chosen, lines, image):
    if not _origin:
        for i in chosen:
            _origin.setdefault(lines[i][1], image[i])
    return _origin.get(caption)


if __name__ == "__main__":
    main()
