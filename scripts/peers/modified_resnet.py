#!/usr/bin/python3
"""PyTorch reference of open_clip's ModifiedResNet image tower (OpenAI's RN50 layout), for
clipgo's forward parity test (vision/resnet_parity_test.go).

Written from the published architecture (Radford et al. 2021, "Learning Transferable Visual
Models From Natural Language Supervision", section 2.4, and the module layout whose
state_dict names open_clip checkpoints carry):
  * stem: three 3x3 convolutions without bias (3 -> width/2 at stride 2, width/2 -> width/2,
    width/2 -> width), each followed by BatchNorm2d and ReLU, then a 2x2 average pool;
  * four stages of Bottleneck blocks (expansion 4) at planes width, 2w, 4w, 8w; the first block
    of stages 2-4 has stride 2, "anti-aliased": every convolution has stride 1 and a
    stride x stride average pool comes after the 3x3 convolution; a block whose stride or
    width changes has a downsample path: average pool, 1x1 conv, BatchNorm2d, in a Sequential
    whose children are named "-1", "0", "1" (so its parameters are downsample.0.* and
    downsample.1.*);
  * attention pool: the feature map flattened to H*W tokens, their mean prepended, a learned
    positional embedding [H*W+1, C] added, and multi-head attention whose only query is the
    mean token; q/k/v/c projections are Linear layers with bias; the output is c_proj's.

Modes (first argument):
  export-random --peers DIR --weights W --inputs I [sizes]
      a randomly initialised tower (open_clip's init, then every batch norm's weight, bias and
      running statistics randomised so that no branch is hidden by a zero gain) written with
      open_clip's state_dict names under "visual." (float32; num_batches_tracked int64 as torch
      keeps it), and a random batch of images [B, 3, S, S] and cotangent [B, embed].
  forward --peers DIR --weights W --inputs I --out O [sizes]
      in float64: the eval-mode output ("eval.image_features"), then one train-mode forward
      ("train.image_features"), the running statistics after it ("train.<buffer name>") and the
      gradient of sum(cotangent * output) in train mode ("train.grad.<param name>").

DIR holds ../shared/peers/clip_step.py, whose safetensors reader and writer are used. Run with
/usr/bin/python3 and LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp.
"""
import argparse
import math
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else None
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.downsample = None
        if stride > 1 or inplanes != planes * EXPANSION:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * EXPANSION, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * EXPANSION)),
            ]))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        if self.pool is not None:
            h = self.pool(h)
        h = self.bn3(self.conv3(h))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(h + shortcut)


class AttentionPool2d(nn.Module):
    def __init__(self, grid, width, heads, out):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) / width ** 0.5)
        self.k_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, out)
        self.heads = heads

    def forward(self, x):
        b, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)                              # [B, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], 1)  # [B, HW+1, C]
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        d = c // self.heads
        q = self.q_proj(tokens[:, :1]).view(b, 1, self.heads, d).transpose(1, 2)   # [B, h, 1, d]
        k = self.k_proj(tokens).view(b, -1, self.heads, d).transpose(1, 2)         # [B, h, L, d]
        v = self.v_proj(tokens).view(b, -1, self.heads, d).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, c)                              # heads side by side
        return self.c_proj(o)


class ModifiedResNet(nn.Module):
    def __init__(self, layers, embed, heads, image_size, width):
        super().__init__()
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes, stride = width << i, (1 if i == 0 else 2)
            stage = []
            for _ in range(blocks):
                stage.append(Bottleneck(inplanes, planes, stride))
                inplanes, stride = planes * EXPANSION, 1
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.attnpool = AttentionPool2d(image_size // 32, width * 32, heads, embed)
        # open_clip's init_parameters: attention pool matrices N(0, C^-1/2), and every
        # Bottleneck's last norm gain zero; torch's defaults elsewhere.
        std = self.attnpool.c_proj.in_features ** -0.5
        for p in (self.attnpool.q_proj, self.attnpool.k_proj, self.attnpool.v_proj, self.attnpool.c_proj):
            nn.init.normal_(p.weight, std=std)
        for i in range(4):
            for name, p in getattr(self, f"layer{i + 1}").named_parameters():
                if name.endswith("bn3.weight"):
                    nn.init.zeros_(p)

    def forward(self, x):
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.relu(bn(conv(x)))
        x = self.avgpool(x)
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.attnpool(x)


PREFIX = "visual."


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["export-random", "forward"])
    ap.add_argument("--peers", required=True, help="directory of clip_step.py (../shared/peers)")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", default="1,1,1,1", help="blocks per stage, four comma-separated counts")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def build(a):
    layers = [int(n) for n in a.layers.split(",")]
    if len(layers) != 4 or min(layers) < 1 or a.image_size % 32:
        sys.exit(f"modified_resnet.py: --layers {a.layers} needs four positive counts and "
                 f"--image-size {a.image_size} a multiple of 32")
    return ModifiedResNet(layers, a.embed, a.heads, a.image_size, a.width)


def export_random(a, st):
    torch.manual_seed(a.seed)
    model = build(a)
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
    sd = OrderedDict((PREFIX + k, v.detach().clone()) for k, v in model.state_dict().items())
    st.st_save(a.weights, sd, {"format": "modified_resnet.py random weights"})
    images = torch.randn(a.batch, 3, a.image_size, a.image_size, generator=g)
    cotangent = torch.randn(a.batch, a.embed, generator=g)
    st.st_save(a.inputs, {"images": images, "cotangent": cotangent})


def forward(a, st):
    if not a.out:
        sys.exit("modified_resnet.py forward: --out is required")
    w, _ = st.st_load(a.weights)
    inputs, _ = st.st_load(a.inputs)
    model = build(a).double()
    sd = model.state_dict()
    missing = sorted(set(sd) - {k[len(PREFIX):] for k in w})
    extra = sorted(k for k in w if not k.startswith(PREFIX) or k[len(PREFIX):] not in sd)
    if missing or extra:
        sys.exit(f"modified_resnet.py: weights do not match the model: missing {missing[:5]}, extra {extra[:5]}")
    model.load_state_dict({k[len(PREFIX):]: torch.from_numpy(v) for k, v in w.items()})
    images = torch.from_numpy(inputs["images"]).double()
    cotangent = torch.from_numpy(inputs["cotangent"]).double()
    out = OrderedDict()
    model.eval()
    with torch.no_grad():
        out["eval.image_features"] = model(images)
    model.train()
    y = model(images)
    (y * cotangent).sum().backward()
    out["train.image_features"] = y.detach()
    for k, v in model.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            out["train." + PREFIX + k] = v.double()
    for k, p in model.named_parameters():
        out["train.grad." + PREFIX + k] = p.grad
    st.st_save(a.out, out)


def main():
    a = parser().parse_args()
    sys.path.insert(0, a.peers)
    import clip_step as st  # the shared reference's safetensors reader and writer
    torch.set_default_dtype(torch.float32)
    {"export-random": export_random, "forward": forward}[a.mode](a, st)


if __name__ == "__main__":
    main()
