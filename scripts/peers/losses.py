#!/usr/bin/python3
"""Training losses in PyTorch (float64), references for clipgo's fusion losses.

Usage: losses.py siglip|triplet|multipos|ntxent < request.json

Reads one JSON object from stdin: {"image": [[...]], "text": [[...]]} (raw features, [B, E]
each) plus the loss's own inputs, and prints the loss and its gradients with respect to every
input as JSON ({"loss", "image", "text", ...}). Features are L2-normalised first (F.normalize).

- siglip (Zhai et al. 2023, Algorithm 1; open_clip's SigLipLoss): "logit_scale" t and
  "logit_bias" b; logits = exp(t) * img @ txt.T + b, labels 2*I - 1,
  loss = -sum(logsigmoid(labels * logits)) / B.
- triplet (VSE++, Faghri et al. 2018, its ContrastiveLoss): "margin" and "hardest";
  s = img @ txt.T, cost_s = [margin + s - diag(s) (rows)]_+, cost_im = [margin + s - diag(s)
  (columns)]_+, diagonals zeroed, max over each anchor's negatives when hardest, summed, and
  divided by B here (clipgo's mean over anchors).
- multipos (multi-positive InfoNCE, SupCon's L_out: Khosla et al. 2020, eq. 2, in CLIP's two
  directions): "logit_scale" t and "ids" (the image identity of each row); logits =
  exp(t) * img @ txt.T, positives P = (ids_i == ids_j), targets q = P / P.sum(1), and
  loss = (CE(logits, q) + CE(logits.T, q)) / 2 with CE(x, q) = -(q * log_softmax(x, 1)).sum(1)
  .mean(): each row's cross-entropy against the uniform distribution over its positives.
  With distinct ids it is CLIP's loss.
- ntxent (SimCLR's NT-Xent, Chen et al. 2020, as SLIP's SIMCLRLoss computes it): "image" and
  "text" are the two augmented views of N images (first and second view; the names are the
  request's), "temperature" tau; z = cat(view1, view2), logits = z @ z.T / tau with the
  diagonal masked out, each view's target its twin (i + N, i - N), loss = cross_entropy mean.
"""
import json
import sys

import torch
import torch.nn.functional as F


def siglip(img, txt, d, leaves):
    t = torch.tensor(d["logit_scale"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(d["logit_bias"], dtype=torch.float64, requires_grad=True)
    leaves.update(logit_scale=t, logit_bias=b)
    logits = t.exp() * img @ txt.T + b
    labels = 2 * torch.eye(img.shape[0], dtype=torch.float64) - 1
    return -F.logsigmoid(labels * logits).sum() / img.shape[0]


def triplet(img, txt, d, leaves):
    scores = img @ txt.T
    diag = scores.diag().view(-1, 1)
    eye = torch.eye(scores.shape[0], dtype=torch.bool)
    cost_s = (d["margin"] + scores - diag).clamp(min=0).masked_fill(eye, 0)
    cost_im = (d["margin"] + scores - diag.t()).clamp(min=0).masked_fill(eye, 0)
    if d["hardest"]:
        cost_s, cost_im = cost_s.max(1)[0], cost_im.max(0)[0]
    return (cost_s.sum() + cost_im.sum()) / scores.shape[0]


def multipos(img, txt, d, leaves):
    t = torch.tensor(d["logit_scale"], dtype=torch.float64, requires_grad=True)
    leaves.update(logit_scale=t)
    logits = t.exp() * img @ txt.T
    ids = torch.tensor(d["ids"])
    pos = (ids[:, None] == ids[None, :]).to(torch.float64)
    q = pos / pos.sum(1, keepdim=True)
    i2t = -(q * F.log_softmax(logits, dim=1)).sum(1).mean()
    t2i = -(q * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (i2t + t2i) / 2


def ntxent(img, txt, d, leaves):
    n = img.shape[0]
    z = torch.cat([img, txt])
    logits = (z @ z.T / d["temperature"]).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("siglip", "triplet", "multipos", "ntxent"):
        sys.exit("usage: losses.py siglip|triplet|multipos|ntxent < request.json")
    d = json.load(sys.stdin)
    img = torch.tensor(d["image"], dtype=torch.float64, requires_grad=True)
    txt = torch.tensor(d["text"], dtype=torch.float64, requires_grad=True)
    leaves = {"image": img, "text": txt}
    loss = {"siglip": siglip, "triplet": triplet, "multipos": multipos, "ntxent": ntxent}[sys.argv[1]](
        F.normalize(img, dim=-1), F.normalize(txt, dim=-1), d, leaves)
    loss.backward()
    out = {"loss": loss.item()}
    for name, x in leaves.items():
        out[name] = x.grad.tolist() if x.dim() else x.grad.item()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
