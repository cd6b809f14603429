#!/usr/bin/env bash
# Memory flat with data size (issue 19, item 3): for each size N (pairs), prepare N synthetic
# pairs, pretrain the demo model for STEPS steps on them, embed the whole train split and run
# retrieval on the val split, each stage as its own process under /usr/bin/time, and print one
# table of peak RSS (MiB) and wall time per stage and size. The first and the last size are
# compared: prepare, pretrain and embed must peak within MARGIN (default 0.10, i.e. 10%) of each
# other or the script exits 1; retrieval is reported but not checked (its val split grows with N:
# 5% of the pairs).
#
#   scripts/scale.sh                  # 10,000 and 200,000 pairs (make scale; ~20 min on 2 idle cores)
#   SIZES="2000 20000" scripts/scale.sh
#
# Needs bin/clipgo (make build) and GNU time (/usr/bin/time, Debian package time); run from the
# repository root. OUT (default out/scale) keeps each size's dataset, run and results (rss.tsv)
# until the next run.
set -euo pipefail
BIN=${BIN:-bin/clipgo}
OUT=${OUT:-out/scale}
SIZES=${SIZES:-10000 200000}
STEPS=${STEPS:-20}
MARGIN=${MARGIN:-0.10}
WORKERS=${WORKERS:-$(nproc)}
TIME=${TIME:-/usr/bin/time}
[ -x "$BIN" ] || { echo "scale: $BIN not found (make build)" >&2; exit 2; }
[ -x "$TIME" ] || { echo "scale: $TIME not found (apt-get install time)" >&2; exit 2; }
mkdir -p "$OUT"
RESULTS=$OUT/rss.tsv
: >"$RESULTS"

# measure STAGE N CMD...: runs CMD under GNU time (a child of time, not of this shell's caller,
# so its peak RSS is its own), appends "stage n rss_mib seconds" to RESULTS.
measure() {
  local stage=$1 n=$2; shift 2
  local log=$OUT/$n/$stage.log
  if ! "$TIME" -f '%M %e' -o "$OUT/$n/$stage.time" "$@" >"$log" 2>&1; then
    echo "scale: $stage at $n pairs failed; see $log" >&2
    tail -5 "$log" >&2
    exit 1
  fi
  read -r kib secs <"$OUT/$n/$stage.time"
  printf '%s\t%s\t%d\t%s\n' "$stage" "$n" $(( kib / 1024 )) "$secs" | tee -a "$RESULTS"
}

for n in $SIZES; do
  d=$OUT/$n
  mkdir -p "$d"
  rm -rf "$d/data" "$d/run"
  measure prepare "$n" "$BIN" prepare --config configs/data/demo.yaml --n "$n" --zeroshot-n 0 \
    --out "$d/data" --workers "$WORKERS"
  rm -rf "$d/embed.parquet" "$d/retrieval.json" "$d/retrieval.details.json"
  measure pretrain "$n" "$BIN" pretrain --config demo --out "$d/run" --set data.train="$d/data" --set data.val="$d/data" \
    --set train.steps="$STEPS" --set train.warmup=2 --set train.log_every=5 --set train.val_every="$STEPS" \
    --set train.val_batches=2 --set train.checkpoint_every="$STEPS" --set data.workers="$WORKERS"
  measure embed "$n" "$BIN" embed --checkpoint "$d/run" --data "$d/data" --split train --no-images \
    --out "$d/embed.parquet" --workers "$WORKERS"
  measure retrieval "$n" "$BIN" retrieval --checkpoint "$d/run" --data "$d/data" --split val \
    --examples 0 --out "$d/retrieval.json" --workers "$WORKERS"
done

python3 - "$RESULTS" "$MARGIN" <<'EOF'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
margin = float(sys.argv[2])
sizes = sorted({int(r[1]) for r in rows})
rss = {(r[0], int(r[1])): int(r[2]) for r in rows}
secs = {(r[0], int(r[1])): float(r[3]) for r in rows}
lo, hi = sizes[0], sizes[-1]
print()
print("| stage | " + " | ".join(f"{n:,} pairs: peak RSS, time" for n in sizes) + f" | RSS {hi:,} / {lo:,} |")
print("|---|" + "---|" * len(sizes) + "---|")
bad = []
for stage in ["prepare", "pretrain", "embed", "retrieval"]:
    if (stage, lo) not in rss or (stage, hi) not in rss:
        continue
    ratio = rss[(stage, hi)] / rss[(stage, lo)]
    cells = " | ".join(f"{rss[(stage, n)]:,} MiB, {secs[(stage, n)]:.0f} s" for n in sizes)
    checked = stage != "retrieval"
    print(f"| {stage} | {cells} | {ratio:.2f}{'' if checked else ' (not checked)'} |")
    if checked and lo != hi and abs(ratio - 1) > margin:
        bad.append(f"{stage}: {rss[(stage, lo)]} MiB at {lo} pairs, {rss[(stage, hi)]} MiB at {hi} ({ratio:.2f}x)")
if bad:
    print(f"scale: peak RSS not within {margin:.0%} between {lo} and {hi} pairs:", *bad, sep="\n  ", file=sys.stderr)
    sys.exit(1)
EOF
