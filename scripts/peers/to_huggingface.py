#!/usr/bin/python3
"""Writes an open_clip CLIP state dict (ViT) in Hugging Face transformers' CLIPModel naming.

Usage: to_huggingface.py --peers ../shared/peers --in W --out DIR [--hidden-act gelu|quick_gelu]

DIR gets model.safetensors and a config.json with the fields clipgo reads (num_attention_heads
and hidden_act per tower; the heads come from W's vision_heads/text_heads metadata). The names
follow transformers' models/clip (modeling_clip.py and convert_clip_original_pytorch_to_hf.py):
q/k/v split out of in_proj (rows q, k, v), visual.proj and text_projection transposed into
nn.Linear weights, ln_pre as pre_layrnorm (sic). The position_ids buffers that older
transformers versions save are written too.
"""
import argparse
import json
import os
import re
import sys

import numpy as np


def block(rest):
    for a, b in (("attn.out_proj.", "self_attn.out_proj."), ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."),
                 ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2.")):
        if rest.startswith(a):
            return b + rest[len(a):]
    raise SystemExit("unknown block tensor " + rest)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden-act", default="gelu", choices=["gelu", "quick_gelu"])
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import clip_step
    w, meta = clip_step.st_load(a.src)
    out = {}
    for name, x in w.items():
        m = re.match(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.*)$", name)
        if m:
            tower = "vision_model" if m.group(1) else "text_model"
            pre, rest = "%s.encoder.layers.%s." % (tower, m.group(2)), m.group(3)
            if rest.startswith("attn.in_proj_"):
                kind = rest[len("attn.in_proj_"):]
                for part, chunk in zip("qkv", np.split(x, 3, axis=0)):
                    out[pre + "self_attn.%s_proj.%s" % (part, kind)] = chunk
            else:
                out[pre + block(rest)] = x
            continue
        simple = {"token_embedding.weight": "text_model.embeddings.token_embedding.weight",
                  "positional_embedding": "text_model.embeddings.position_embedding.weight",
                  "visual.class_embedding": "vision_model.embeddings.class_embedding",
                  "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
                  "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
                  "logit_scale": "logit_scale"}
        if name in simple:
            out[simple[name]] = x
        elif name.startswith("ln_final."):
            out["text_model.final_layer_norm." + name[len("ln_final."):]] = x
        elif name.startswith("visual.ln_pre."):
            out["vision_model.pre_layrnorm." + name[len("visual.ln_pre."):]] = x
        elif name.startswith("visual.ln_post."):
            out["vision_model.post_layernorm." + name[len("visual.ln_post."):]] = x
        elif name == "visual.proj":
            out["visual_projection.weight"] = np.ascontiguousarray(x.T)
        elif name == "text_projection":
            out["text_projection.weight"] = np.ascontiguousarray(x.T)
        else:
            raise SystemExit("unknown tensor " + name)
    out["text_model.embeddings.position_ids"] = np.arange(w["positional_embedding"].shape[0], dtype=np.int64)[None]
    out["vision_model.embeddings.position_ids"] = np.arange(w["visual.positional_embedding"].shape[0], dtype=np.int64)[None]
    os.makedirs(a.out, exist_ok=True)
    clip_step.st_save(os.path.join(a.out, "model.safetensors"), out, {"format": "pt"})
    cfg = {"architectures": ["CLIPModel"], "model_type": "clip",
           "projection_dim": int(w["text_projection"].shape[1]),
           "text_config": {"num_attention_heads": int(meta["text_heads"]), "hidden_act": a.hidden_act},
           "vision_config": {"num_attention_heads": int(meta["vision_heads"]), "hidden_act": a.hidden_act}}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
