#!/usr/bin/python3
"""Per-op profile of the PyTorch reference's training step (../shared/peers/clip_step.py).

Builds the reference's model, optimiser, schedule and random batches exactly as its benchmark
mode does (its own CLIP, param_groups, cosine_lr, make_batch and clip_loss, imported from the
peers directory, which stays read-only), runs --warmup untimed steps, then --steps steps under
torch.profiler (CPU activity), and prints one JSON line: the wall time of each profiled step,
the self time of every op, and the self time summed per op group (profile_steps.py's groups,
see GROUPS below and docs/performance.md).

An allocation (aten::empty, empty_strided, ...) or a copy/layout op (copy_, contiguous, cat,
...) goes to the allocation or data-conversion group wherever it runs (the contiguous copies
aten::matmul makes before a bmm are data conversion, as clipgo's head copies are); any other
op's self time goes to the group of its nearest enclosing (or own) op that names a model
operation (a matrix product, softmax, layer norm, GELU, the embedding, AdamW, the loss), so
that an aten::sqrt inside AdamW's step counts as AdamW and the zero fill (aten::fill_) of the
dense token-embedding gradient inside aten::embedding_dense_backward counts as the embedding. Ops outside every such operation fall
into the generic groups (element-wise add and reductions, other).

torch.profiler measures wall time on the calling thread; OpenMP worker threads run inside an
op's wall time and are not profiled separately, so the shares are shares of the step's wall time.

Run it on the OpenMP OpenBLAS (LD_LIBRARY_PATH=/usr/lib/<multiarch>/openblas-openmp), as
scripts/bench_peer.py does; profile_steps.py does so and checks the "blas" field.

Usage: profile_peer.py --peers ../shared/peers --preset tiny [--threads 2] [--steps 3] [--warmup 2]
       [--batch-size N] [--vocab-size N] [... any clip_step.py model flag]
"""
import argparse
import json
import math
import os
import sys
import time

# SEMANTIC maps torch op (or record_function) names to the group of the model operation they
# are; the first group whose predicate matches the nearest such enclosing op wins.
SEMANTIC = [
    ("AdamW", lambda n: n.startswith("Optimizer.step#") or n.startswith("Optimizer.zero_grad#")),
    ("GEMM (matmul, conv patch embedding)", lambda n: n in (
        "aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
        "aten::conv2d", "aten::convolution", "aten::_convolution", "aten::_slow_conv2d_forward",
        "aten::_slow_conv2d_backward", "aten::mkldnn_convolution", "aten::thnn_conv2d",
        "aten::convolution_backward", "aten::addmv", "aten::mv")),
    ("attention softmax", lambda n: n in ("aten::softmax", "aten::_softmax", "aten::_softmax_backward_data")),
    ("layer norm", lambda n: n in ("aten::layer_norm", "aten::native_layer_norm",
                                   "aten::native_layer_norm_backward")),
    ("GELU", lambda n: n in ("aten::gelu", "aten::gelu_backward")),
    ("token embedding (gather + dense gradient)", lambda n: n in (
        "aten::embedding", "aten::embedding_backward", "aten::embedding_dense_backward")),
    ("loss (normalise, logits, cross-entropy)", lambda n: n in (
        "clip_loss", "aten::cross_entropy_loss", "aten::log_softmax", "aten::_log_softmax", "aten::nll_loss",
        "aten::nll_loss_nd", "aten::nll_loss_forward", "aten::nll_loss_backward",
        "aten::_log_softmax_backward_data", "aten::norm", "aten::linalg_vector_norm", "aten::clamp_min",
        "DivBackward0", "NormBackward1", "LinalgVectorNormBackward0", "ClampMinBackward0")),
]

# GENERIC groups an op by its own name when no enclosing op names a model operation.
GENERIC = [
    ("allocation", lambda n: n in ("aten::empty", "aten::empty_strided", "aten::empty_like", "aten::new_empty",
                                   "aten::resize_")),
    ("data conversion (copy, layout)", lambda n: n in (
        "aten::copy_", "aten::contiguous", "aten::clone", "aten::cat", "aten::to", "aten::_to_copy",
        "aten::reshape", "aten::view", "aten::transpose", "aten::permute", "aten::_reshape_alias",
        "aten::chunk", "aten::split", "aten::narrow", "aten::slice", "aten::select", "aten::expand",
        "aten::t", "aten::unsafe_split", "aten::as_strided", "aten::index", "aten::unsqueeze",
        "aten::squeeze", "aten::flatten", "aten::stack", "aten::where", "aten::argmax",
        "aten::detach", "aten::alias", "aten::unbind")),
    ("allocation", lambda n: n in ("aten::zeros", "aten::zeros_like", "aten::zero_", "aten::fill_", "aten::ones",
                                   "aten::new_zeros")),  # zero fills: the enclosing op's where it has one
    ("bias/residual add, reductions", lambda n: n in (
        "aten::add", "aten::add_", "aten::sum", "aten::mul", "aten::mul_", "aten::sub", "aten::rsub",
        "aten::clamp_", "aten::exp")),
]


def group_of(ev, cache):
    """The group of a profiler event: its nearest enclosing (or own) semantic op's, else its own
    generic group, else "other"."""
    if ev.id in cache:
        return cache[ev.id]
    g = next((name for name, pred in GENERIC[:2] if pred(ev.name)), None)  # allocation, copies
    e = ev
    while e is not None and g is None:
        for name, pred in SEMANTIC:
            if pred(e.name):
                g = name
                break
        e = e.cpu_parent
    if g is None:
        g = next((name for name, pred in GENERIC if pred(ev.name)), "other (autograd engine, dispatch, Python)")
    cache[ev.id] = g
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--top", type=int, default=25, help="ops listed by self time")
    a, rest = ap.parse_known_args()
    sys.path.insert(0, os.path.abspath(a.peers))
    import clip_step as ref  # the reference itself: same model, optimiser, schedule and data
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    c = ref.parse(rest)
    torch.set_num_threads(c.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(c.seed)
    model = ref.CLIP(c)
    model.train()
    groups, _ = ref.param_groups(model, c.wd, c.wd_rule)
    opt = torch.optim.AdamW(groups, lr=c.lr, betas=(0.9, 0.98), eps=1e-6)
    total = c.warmup + c.steps
    sched = ref.cosine_lr(opt, c.lr, c.lr_warmup, max(total, c.lr_warmup + 1))
    gen = torch.Generator().manual_seed(c.seed + 1)
    data = [ref.make_batch(c, gen) for _ in range(c.data_batches)]
    max_ls = math.log(100)

    def step(i):  # clip_step.bench's timed region, op for op
        images, text = data[i % len(data)]
        sched(i)
        opt.zero_grad(set_to_none=True)
        img_f, txt_f, scale = model(images, text)
        with record_function("clip_loss"):  # groups the loss's ops (CE, logits) as one
            loss = ref.clip_loss(img_f, txt_f, scale)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_ls)
        return loss.item()

    for i in range(c.warmup):
        step(i)
    walls = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(c.warmup, total):
            t0 = time.perf_counter()
            with record_function("clipgo_profile_step"):
                step(i)
            walls.append(time.perf_counter() - t0)
    events = [e for e in prof.events() if e.name != "clipgo_profile_step"]
    cache, by_group, by_op = {}, {}, {}
    for e in events:
        s = e.self_cpu_time_total / 1e6
        g = group_of(e, cache)
        by_group[g] = by_group.get(g, 0.0) + s
        o = by_op.setdefault(e.name, {"op": e.name, "self_s": 0.0, "calls": 0, "groups": {}})
        o["self_s"] += s
        o["calls"] += 1
        o["groups"][g] = o["groups"].get(g, 0.0) + s
    wall = sum(walls)
    profiled = sum(by_group.values())
    # The wall time no op covers (Python between ops, the profiler's own bookkeeping).
    by_group["other (autograd engine, dispatch, Python)"] = by_group.get(
        "other (autograd engine, dispatch, Python)", 0.0) + max(0.0, wall - profiled)
    ops = sorted(by_op.values(), key=lambda o: -o["self_s"])[:a.top]
    for o in ops:
        o["self_s"] = round(o["self_s"], 6)
        o["group"] = max(o.pop("groups").items(), key=lambda kv: kv[1])[0]
    print(json.dumps({
        "side": "reference", "config": {k: getattr(c, k) for k in ref.MODEL_KEYS + ("batch_size",)},
        "threads": c.threads, "steps": c.steps, "warmup": c.warmup, "step_wall_s": [round(w, 5) for w in walls],
        "total_s": round(wall, 6), "groups_s": {k: round(v, 6) for k, v in by_group.items()}, "ops": ops,
        "blas": ref.blas_lib(), "torch": torch.__version__, "loadavg_1m": os.getloadavg()[0],
        "basis": "wall time of the profiled steps on the calling thread (torch.profiler self times)",
    }), flush=True)


if __name__ == "__main__":
    main()
