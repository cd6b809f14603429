#!/usr/bin/python3
"""Rewrites an open_clip state dict (safetensors) the way other tools save the same model.

Usage: state_dict_variant.py --peers ../shared/peers --in W --out W2 [--dtype f16|bf16|f32]
       [--prefix module.] [--scalar-shape 1] [--drop-metadata]

- --dtype: the floats' type (torch's .half() / .bfloat16(); rounded as torch rounds).
- --round f16|bf16: round the floats as that type would, but keep --dtype (a reference that
  computes on exactly the values a half-precision file holds).
- --prefix: put before every name, as DataParallel / DistributedDataParallel state dicts are.
- --scalar-shape 1: logit_scale (and logit_bias) as [1], as some exports write it.
- --drop-metadata: no __metadata__ (no head counts: readers fall back to open_clip's rule).
The reader and writer are ../shared/peers/clip_step.py's (the reference library's layout).
"""
import argparse
import sys

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["f16", "bf16", "f32"], default="f32")
    ap.add_argument("--round", choices=["f16", "bf16"])
    ap.add_argument("--prefix", default="")
    ap.add_argument("--scalar-shape", type=int, choices=[0, 1], default=0)
    ap.add_argument("--drop-metadata", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import clip_step
    tensors, meta = clip_step.st_load(a.src)
    out = {}
    for name, x in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(x))
        if t.is_floating_point():
            if a.round:
                t = (t.half() if a.round == "f16" else t.bfloat16()).float()
            t = {"f16": t.half(), "bf16": t.bfloat16(), "f32": t.float()}[a.dtype]
        if a.scalar_shape and t.dim() == 0:
            t = t.reshape(1)
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: write the bits, tagged BF16 below
            t = t.view(torch.int16)
        out[a.prefix + name] = t
    buf = clip_step.st_dumps(out, None if a.drop_metadata else meta)
    if a.dtype == "bf16":  # the int16 views are BF16 tensors
        n = int.from_bytes(buf[:8], "little")
        header = buf[8:8 + n].rstrip(b" ").replace(b'"dtype":"I16"', b'"dtype":"BF16"')
        header += b" " * (-len(header) % 8)
        buf = len(header).to_bytes(8, "little") + header + buf[8 + n:]
    with open(a.out, "wb") as f:
        f.write(buf)


if __name__ == "__main__":
    main()
