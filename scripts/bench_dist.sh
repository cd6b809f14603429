#!/usr/bin/env bash
# Step time of `small` (batch 64 global, 64 px, context 77) on this machine's cores: 1 rank x 2
# threads vs 2 ranks x 1 thread, alternating, 3 rounds. Prints each run's median step time (steps
# 3 on) and rank 0's mean time in collectives per step (comm_s).
# Needs bin/clipgo and bin/clipgo-mpi (make build build-mpi); run from the repository root.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_if_include=lo \
  OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl=self,tcp OMPI_MCA_plm=isolated
DATA=${DATA:-/tmp/clipgo-benchdata}
OUT=${OUT:-/tmp/clipgo-benchruns}
[ -f "$DATA/manifest.json" ] || bin/clipgo prepare --config configs/data/demo.yaml --n 3000 --zeroshot-n 10 --out "$DATA" >/dev/null 2>&1
S="--config demo --set model_preset=small --set model.text.context_length=77 --set data.train=$DATA --set data.val=$DATA --set train.steps=${STEPS:-14} --set train.batch_size=64 --set train.warmup=1 --set train.log_every=1 --set train.val_every=0 --set train.checkpoint_every=1000"
med() { python3 -c '
import json,sys,statistics
recs=[r for r in (json.loads(l) for l in open(sys.argv[1])) if "elapsed_s" in r]
el=[r["elapsed_s"] for r in recs]
d=[b-a for a,b in zip(el[2:],el[3:])]
c=[r.get("comm_s",0) for r in recs[3:]]
print("median step %.3f s  mean comm %.3f s/step  (%d steps)" % (statistics.median(d), statistics.mean(c), len(d)))' $1; }
for round in 1 2 3; do
  rm -rf "$OUT"
  GOMAXPROCS=2 bin/clipgo pretrain $S --out "$OUT/one" --set data.workers=2 >/dev/null 2>&1
  echo "round $round 1 rank x 2 threads: $(med "$OUT/one/metrics.jsonl")"
  mpirun -np 2 --bind-to none -x GOMAXPROCS=1 bin/clipgo-mpi pretrain $S --out "$OUT/two" --set data.workers=1 >/dev/null 2>&1
  echo "round $round 2 ranks x 1 thread: $(med "$OUT/two/metrics.jsonl")"
done
