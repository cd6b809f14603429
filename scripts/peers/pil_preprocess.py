#!/usr/bin/python3
"""PIL and torchvision's decode and eval transform: the reference for clipgo's data/imageproc.

Usage:
  pil_preprocess.py preprocess --size S --out DIR [--reference torchvision|pil] FILE...
  pil_preprocess.py synth --out DIR
  pil_preprocess.py selftest

preprocess: for the i-th FILE (counting from 0) writes
  DIR/i.rgb     Image.open(FILE).convert("RGB") as raw uint8, height x width x 3
  DIR/i.tensor  open_clip's eval transform of Image.open(FILE) as raw little-endian float32
                [3][S][S]
and prints one JSON object: {"pil": version, "torchvision": version,
"images": [{"file", "mode", "width", "height"}, ...]}.

open_clip's eval transform (src/open_clip/transform.py image_transform, is_train=False,
resize_mode "shortest", interpolation "bicubic", OpenAI mean and std) is
  Compose([Resize(S, interpolation=BICUBIC), CenterCrop(S), _convert_to_rgb, ToTensor(),
           Normalize(mean, std)])
built here from torchvision's classes, as open_clip builds it (open_clip itself is not packaged
for Debian; _convert_to_rgb is image.convert("RGB"), after the crop, as in open_clip).
--reference pil computes the same with PIL and numpy calls alone (importing torch takes
seconds), following torchvision 0.14's code: Resize computes the long side as
int(size * long / short) and returns the image unchanged when its size already is that
(functional.py _compute_resized_output_size, resize), then calls PIL's Image.resize(size,
BICUBIC) (functional_pil.py resize); CenterCrop's corner is int(round((h - size) / 2.0))
(functional.py center_crop); ToTensor divides the uint8 values by 255 in float32, Normalize
computes (x - mean) / std in float32. selftest checks that the two agree bit for bit.

synth: writes JPEGs encoded by PIL (libjpeg-turbo) from one photo-like test image, one for
each layout clipgo must decode as PIL does: 4:2:0, 4:2:2, 4:4:4, progressive, greyscale, CMYK,
odd sizes; prints their names as a JSON list.

Needs python3-pil and python3-torchvision (Debian), and numpy.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image
import PIL

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def eval_transform(size):
    import torchvision
    from torchvision import transforms as T

    def _convert_to_rgb(image):
        return image.convert("RGB")

    return T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        _convert_to_rgb,
        T.ToTensor(),
        T.Normalize(mean=OPENAI_MEAN, std=OPENAI_STD),
    ]), torchvision.__version__


def eval_transform_pil(size):
    mean = np.asarray(OPENAI_MEAN, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(OPENAI_STD, dtype=np.float32).reshape(3, 1, 1)

    def tf(im):
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
        if (nh, nw) != (h, w):
            im = im.resize((nw, nh), Image.BICUBIC)
        top = int(round((nh - size) / 2.0))
        left = int(round((nw - size) / 2.0))
        im = im.crop((left, top, left + size, top + size)).convert("RGB")
        x = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        return (x - mean) / std

    return tf


def preprocess(a):
    if a.reference == "pil":
        tf, tv = eval_transform_pil(a.size), "none (--reference pil)"
    else:
        tf, tv = eval_transform(a.size)
    os.makedirs(a.out, exist_ok=True)
    images = []
    for i, f in enumerate(a.files):
        with Image.open(f) as im:
            mode = im.mode
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
            with open(os.path.join(a.out, f"{i}.rgb"), "wb") as w:
                w.write(rgb.tobytes())
            t = tf(im)
            t = (t.numpy() if hasattr(t, "numpy") else t).astype("<f4")
            with open(os.path.join(a.out, f"{i}.tensor"), "wb") as w:
                w.write(t.tobytes())
            images.append({"file": f, "mode": mode, "width": im.width, "height": im.height})
    print(json.dumps({"pil": PIL.__version__, "torchvision": tv, "images": images}))


def photo(w, h, seed=1):
    """A photo-like RGB image: smooth colour gradients, sharp edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 128 + 90 * np.cos((x + y) / 13.0)
    b = 255 * ((x // 9 + y // 5) % 2)  # hard edges stress chroma upsampling
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def synth(a):
    print(json.dumps(write_synth(a.out)))


def write_synth(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    base = photo(97, 61)
    tall = photo(45, 130, seed=2)
    out = []

    def save(name, im, **kw):
        im.save(os.path.join(out_dir, name), "JPEG", **kw)
        out.append(name)

    save("420.jpg", base, quality=90, subsampling=2)
    save("422.jpg", base, quality=90, subsampling=1)
    save("444.jpg", base, quality=95, subsampling=0)
    save("progressive.jpg", base, quality=85, subsampling=2, progressive=True)
    save("tall420.jpg", tall, quality=75, subsampling=2)
    save("big420.jpg", photo(333, 250, seed=3), quality=88, subsampling=2)
    save("gray.jpg", base.convert("L"), quality=90)
    save("cmyk.jpg", base.convert("CMYK"), quality=90)
    return out


def selftest(a):
    """The PIL-only transform equals torchvision's on every synthetic layout and size."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        write_synth(d)
        worst = 0.0
        for size in (16, 61, 97, 160, 224):
            tv, _ = eval_transform(size)
            pl = eval_transform_pil(size)
            for n in sorted(os.listdir(d)):
                with Image.open(os.path.join(d, n)) as im:
                    x, y = tv(im).numpy(), pl(im)
                    if x.shape != y.shape:
                        raise ValueError(f"{n} at {size}: shapes {x.shape} and {y.shape}")
                    worst = max(worst, float(np.abs(x - y).max()))
    print(json.dumps({"max_abs_diff": worst}))
    if worst != 0:
        print("FAILED", file=sys.stderr)
        sys.exit(1)
    print("SELF-TEST PASSED", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("preprocess")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--reference", choices=("torchvision", "pil"), default="torchvision")
    p.add_argument("files", nargs="+")
    s = sub.add_parser("synth")
    s.add_argument("--out", required=True)
    sub.add_parser("selftest")
    a = ap.parse_args()
    try:
        {"preprocess": preprocess, "synth": synth, "selftest": selftest}[a.mode](a)
    except (OSError, ValueError) as e:
        print(f"pil_preprocess.py {a.mode}: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
