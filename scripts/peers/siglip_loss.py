#!/usr/bin/python3
"""SigLIP's sigmoid loss in PyTorch (float64), as a reference for clipgo's fusion.SigLIP.

Reads one JSON object from stdin: {"image": [[...]], "text": [[...]], "logit_scale": t,
"logit_bias": b} (raw features, [B, E] each), and prints the loss and its gradients with respect
to every input: {"loss", "image", "text", "logit_scale", "logit_bias"}. The loss follows the
paper (Zhai et al. 2023, Algorithm 1) and open_clip's SigLipLoss: features L2-normalised,
logits = exp(t) * img @ txt.T + b, labels 2*I - 1, loss = -sum(logsigmoid(labels * logits)) / B.
"""
import json
import sys

import torch
import torch.nn.functional as F


def main():
    d = json.load(sys.stdin)
    f64 = dict(dtype=torch.float64, requires_grad=True)
    img, txt = torch.tensor(d["image"], **f64), torch.tensor(d["text"], **f64)
    t, b = torch.tensor(d["logit_scale"], **f64), torch.tensor(d["logit_bias"], **f64)
    logits = t.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T + b
    labels = 2 * torch.eye(img.shape[0], dtype=torch.float64) - 1
    loss = -F.logsigmoid(labels * logits).sum() / img.shape[0]
    loss.backward()
    json.dump({"loss": loss.item(), "image": img.grad.tolist(), "text": txt.grad.tolist(),
               "logit_scale": t.grad.item(), "logit_bias": b.grad.item()}, sys.stdout)


if __name__ == "__main__":
    main()
