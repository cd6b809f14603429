#!/usr/bin/python3
"""Encoder throughput of the PyTorch reference: the counterpart of `clipgo bench --mode inference`.

Builds ../shared/peers/clip_step.py's own CLIP (imported from the peers directory, which stays
read-only; nothing of it is copied here) from the same flags as its benchmark (--preset, every
size flag, --batch-size, --steps, --warmup, --threads, --seed, --data-batches), in eval mode,
and its random batches (make_batch). Under torch.no_grad() it runs --warmup untimed batches of
encode_image and encode_text, then times --steps batches of images (encode_image, L2-normalised
as clipgo's encoder returns them), then --steps batches of token rows (encode_text), and prints
one JSON line with the field names clipgo prints: images_per_s and texts_per_s (the batch over
the median batch time), the medians, peak RSS (ru_maxrss) and the BLAS library torch mapped
(`blas`, which scripts/bench_peer.py checks is the OpenMP OpenBLAS).

Run it as bench_peer.py does, on the OpenMP OpenBLAS:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 scripts/peers/infer_peer.py \\
    --peers ../shared/peers --preset small --batch-size 64 --threads 2
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PEERS = os.path.join(os.environ.get("CLIPGO_SHARED") or os.path.join(HERE, "..", "..", "..", "shared"),
                             "peers")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Every other flag is clip_step.py's (its --help lists them).")
    ap.add_argument("--peers", default=DEFAULT_PEERS, help="directory of clip_step.py (default %(default)s)")
    a, rest = ap.parse_known_args(argv)
    sys.path.insert(0, os.path.abspath(a.peers))
    try:
        import clip_step  # noqa: E402  (the reference's model, batches and flags)
    except ImportError as e:
        sys.exit("infer_peer: cannot import clip_step.py from %s (--peers): %s" % (a.peers, e))
    import torch

    c = clip_step.parse(rest)
    torch.set_num_threads(c.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(c.seed)
    model = clip_step.CLIP(c)
    model.eval()
    gen = torch.Generator().manual_seed(c.seed + 1)
    data = [clip_step.make_batch(c, gen) for _ in range(max(c.data_batches, 1))]

    def images(i):
        return model.encode_image(data[i % len(data)][0], normalize=True)

    def texts(i):
        return model.encode_text(data[i % len(data)][1], normalize=True)

    def timed(embed):
        times = []
        for i in range(c.steps):
            t0 = time.perf_counter()
            out = embed(c.warmup + i)
            times.append(time.perf_counter() - t0)
            if out.shape != (c.batch_size, c.embed_dim) or not torch.isfinite(out).all():
                sys.exit("infer_peer: a batch gave %s, not %d finite embeddings of %d"
                         % (tuple(out.shape), c.batch_size, c.embed_dim))
        return times

    with torch.no_grad():
        for i in range(c.warmup):
            images(i)
            texts(i)
        ti = timed(images)
        tt = timed(texts)

    fl = clip_step.flops_per_sample(c)
    f_img, f_txt = fl["vision_matmul"] + fl["vision_attn"], fl["text_matmul"] + fl["text_attn"]
    out = dict(bench="clip_infer", mode="inference", preset=c.preset, threads=c.threads, batch=c.batch_size,
               timed_batches=c.steps, warmup_batches=c.warmup,
               params=sum(p.numel() for p in model.parameters()))
    if c.steps > 0:
        mi, mt = statistics.median(ti), statistics.median(tt)
        out.update(image_batch_median_s=round(mi, 5), text_batch_median_s=round(mt, 5),
                   images_per_s=round(c.batch_size / mi, 2), texts_per_s=round(c.batch_size / mt, 2),
                   flops_per_image=int(f_img), flops_per_text=int(f_txt),
                   image_gflops=round(f_img * c.batch_size / mi / 1e9, 2),
                   text_gflops=round(f_txt * c.batch_size / mt / 1e9, 2))
    out.update(peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
               path="torch.no_grad, model.eval()",
               config={k: getattr(c, k) for k in clip_step.MODEL_KEYS},
               torch=torch.__version__, blas=clip_step.blas_lib(), num_threads=torch.get_num_threads(),
               python=platform.python_version(),
               env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                   "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH") if os.environ.get(k)},
               image_times_s=[round(t, 5) for t in ti], text_times_s=[round(t, 5) for t in tt],
               loadavg_1m=os.getloadavg()[0])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
