#!/usr/bin/python3
"""PyTorch reference embeddings of a CLIP model given as clipgo's fusion.Config, for the interop
tests (make interop): ViT or ModifiedResNet image tower, GELU or QuickGELU.

Modes (first argument):
  export-random --peers DIR --config JSON --weights W --inputs I [--seed N] [--batch B]
                [--f16-module W16 --reference R]
      a randomly initialised model (every batch norm's weight, bias and running statistics
      randomised too) written with open_clip's state_dict names (float32, num_batches_tracked
      int64), and a batch: images f32 [B, 3, S, S] and token ids int64 [B, L], each row ending
      at its EOT (the largest id, where the text tower pools), zeros after. With --f16-module,
      also the model as other tools save it: F16 (torch's .half()), every name prefixed with
      "module." (DataParallel), logit_scale of shape [1], no metadata; and in R the embeddings
      (as embed writes them) of the batch by the model on those F16-rounded weights.
  embed --peers DIR --config JSON --weights W --inputs I --out O
      loads W strictly (its names and shapes exactly the model's state_dict, as
      load_state_dict(strict=True)), then in float64 and eval mode writes the L2-normalised
      "image_embedding" [B, E] and "text_embedding" [B, E].

JSON is a fusion.Config ({"embed_dim", "quick_gelu", "vision": {"type", "image_size",
"patch_size", "width", "layers", "heads", "mlp_ratio", "stage_layers"}, "text": {...}}); the two
towers' mlp_ratio must agree (the reference has one). The model is ../shared/peers/clip_step.py's
CLIP (the text tower and the ViT) with, for "type": "resnet", scripts/peers/modified_resnet.py's
tower as model.visual; QuickGELU replaces every block's GELU with x * sigmoid(1.702 x).
DIR holds clip_step.py, whose safetensors reader and writer are used.
"""
import argparse
import json
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


class QuickGELU(nn.Module):
    """OpenAI CLIP's GELU approximation, as open_clip's QuickGELU."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def build(cfg, clip_step, modified_resnet):
    v, t = cfg["vision"], cfg["text"]
    resnet = v.get("type") == "resnet"
    ratios = {t["mlp_ratio"]} | (set() if resnet else {v["mlp_ratio"]})
    if len(ratios) != 1:
        sys.exit(f"clip_embed.py: the towers' mlp_ratio differ ({sorted(ratios)}); the reference has one")
    c = argparse.Namespace(
        image_size=v["image_size"], patch_size=v.get("patch_size") or v["image_size"],
        vision_width=v["width"] if not resnet else 64, vision_layers=0 if resnet else v["layers"],
        vision_heads=v["heads"] if not resnet else 1, text_width=t["width"], text_layers=t["layers"],
        text_heads=t["heads"], context_length=t["context_length"], vocab_size=t["vocab_size"],
        embed_dim=cfg["embed_dim"], mlp_ratio=ratios.pop())
    model = clip_step.CLIP(c)
    if resnet:
        model.visual = modified_resnet.ModifiedResNet(v["stage_layers"], cfg["embed_dim"], v["heads"],
                                                      v["image_size"], v["width"])
    if cfg.get("quick_gelu"):
        for m in model.modules():
            if isinstance(m, nn.Sequential) and isinstance(m._modules.get("gelu"), nn.GELU):
                m._modules["gelu"] = QuickGELU()
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["export-random", "embed"])
    ap.add_argument("--peers", required=True, help="directory of clip_step.py (../shared/peers)")
    ap.add_argument("--config", required=True, help="clipgo's fusion.Config as JSON")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--f16-module", help="export-random: also the F16, module.-prefixed copy")
    ap.add_argument("--reference", help="export-random: the embeddings on the F16-rounded weights")
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import clip_step
    import modified_resnet
    cfg = json.loads(a.config)
    torch.manual_seed(a.seed)
    model = build(cfg, clip_step, modified_resnet)

    if a.mode == "export-random":
        g = torch.Generator().manual_seed(a.seed + 1)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    n = m.num_features
                    m.weight.copy_(0.5 + torch.rand(n, generator=g))
                    m.bias.copy_(0.2 * torch.randn(n, generator=g))
                    m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                    m.num_batches_tracked.fill_(7)
        S, L, V = cfg["vision"]["image_size"], cfg["text"]["context_length"], cfg["text"]["vocab_size"]
        images = torch.randn(a.batch, 3, S, S, generator=g)
        texts = torch.zeros(a.batch, L, dtype=torch.int64)
        for i in range(a.batch):
            n = int(torch.randint(1, L, (1,), generator=g))  # tokens before the EOT
            texts[i, :n] = torch.randint(1, V - 1, (n,), generator=g)
            texts[i, n] = V - 1
        clip_step.st_save(a.weights, model.state_dict(), {"producer": "clip_embed.py export-random"})
        clip_step.st_save(a.inputs, {"images": images, "texts": texts})
        if a.f16_module:
            if not a.reference:
                sys.exit("clip_embed.py export-random: --f16-module needs --reference")
            half = OrderedDict(("module." + k, (v.half() if v.is_floating_point() else v).reshape(v.shape or (1,)))
                               for k, v in model.state_dict().items())
            clip_step.st_save(a.f16_module, half)
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.is_floating_point():
                        v.copy_(v.half().float())
            embed(model, images, texts, a.reference, clip_step)
        return

    if not a.out:
        sys.exit("clip_embed.py embed: --out is required")
    w, _ = clip_step.st_load(a.weights)
    sd = model.state_dict()

    def fits(k):  # scalars may be [] or [1], as open_clip's own loading accepts
        a_, b_ = tuple(w[k].shape), tuple(sd[k].shape)
        return a_ == b_ or (w[k].size == sd[k].numel() == 1 and len(a_) <= 1 and len(b_) <= 1)
    bad = [k for k in sd if k in w and not fits(k)]
    if bad:
        sys.exit(f"clip_embed.py: {a.weights}: mis-shaped {[(k, list(w[k].shape), list(sd[k].shape)) for k in bad[:5]]}")
    model.load_state_dict(OrderedDict((k, torch.from_numpy(x.copy()).reshape(sd[k].shape) if k in sd else torch.from_numpy(x.copy()))
                                      for k, x in w.items()), strict=True)
    inputs, _ = clip_step.st_load(a.inputs)
    embed(model, torch.from_numpy(inputs["images"]), torch.from_numpy(inputs["texts"]), a.out, clip_step)


def embed(model, images, texts, out, clip_step):
    """Writes the L2-normalised embeddings of the batch, computed in float64 in eval mode."""
    model.double().eval()
    with torch.no_grad():
        img = model.encode_image(images.double(), normalize=True)
        txt = model.encode_text(texts.long(), normalize=True)
    clip_step.st_save(out, {"image_embedding": img, "text_embedding": txt}, {"producer": "clip_embed.py"})


if __name__ == "__main__":
    main()
