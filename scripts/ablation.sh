#!/usr/bin/env bash
# The ablation of issue 15 (make ablation): the tiny model on the Flickr8k training images at
# the recipe sizes (configs/train/flickr8k-ablation.yaml: vocab 49,408, context 32, 32 px,
# batch 128), once per arm below. An arm is that recipe plus --set overrides; each is trained,
# its best validation kept (train.early_stop), and that best.safetensors is evaluated with
# `clipgo retrieval` on the 500 held-out images. scripts/ablation_table.py then writes the
# Markdown table (recall@1/5/10 both ways, the best step, wall time).
#
#   scripts/ablation.sh                       # every arm of ARMS_FILE, one after the other
#   ARMS="plain siglip" scripts/ablation.sh   # some arms
#   JOBS=2 scripts/ablation.sh                # two arms at a time, one thread each
#
# Arms resume (pretrain --resume auto) and an arm with its retrieval JSON is done: rerunning the
# script continues where it stopped. Wall time adds up over resumed invocations. Needs
# bin/clipgo and out/flickr8k (make flickr8k-data); run from the repository root.
set -euo pipefail
BIN=${BIN:-bin/clipgo}
OUT=${OUT:-out/ablation}
RECIPE=${RECIPE:-configs/train/flickr8k-ablation.yaml}
ARMS_FILE=${ARMS_FILE:-configs/train/ablation-arms.tsv}
JOBS=${JOBS:-1}
THREADS=${THREADS:-$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))}
[ -x "$BIN" ] || { echo "ablation: $BIN not found (make build)" >&2; exit 2; }
[ -f out/flickr8k/manifest.json ] || { echo "ablation: out/flickr8k not found (make flickr8k-data)" >&2; exit 2; }

# arm NAME: prints the arm's line of ARMS_FILE (name, steps, overrides, description; tab-separated).
arm() { awk -F'\t' -v n="$1" '$1 == n' "$ARMS_FILE"; }
ALL=$(awk -F'\t' '!/^#/ && NF >= 3 { print $1 }' "$ARMS_FILE")
ARMS=${ARMS:-$ALL}
for a in $ARMS; do [ -n "$(arm "$a")" ] || { echo "ablation: no arm $a in $ARMS_FILE (arms: $(echo $ALL))" >&2; exit 2; }; done

# run NAME: trains and evaluates one arm; its log is OUT/NAME.log.
run() {
  local name=$1 steps sets
  IFS=$'\t' read -r _ steps sets _ <<<"$(arm "$name")"
  local dir=$OUT/$name log=$OUT/$name.log
  [ -f "$dir/eval/retrieval.json" ] && { echo "ablation: $name done"; return 0; }
  mkdir -p "$OUT"
  local args=(--config "$RECIPE" --out "$dir" --resume auto --set "train.steps=$steps")
  for s in $sets; do [ "$s" = - ] || args+=(--set "$s"); done
  echo "ablation: $name: $BIN pretrain ${args[*]}"
  local t0=$SECONDS
  GOMAXPROCS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BIN" pretrain "${args[@]}" >>"$log" 2>&1 ||
    { echo "ablation: $name failed; see $log" >&2; tail -3 "$log" >&2; return 1; }
  echo $(( SECONDS - t0 )) >>"$dir/wall-seconds"
  echo "$THREADS" >"$dir/threads"
  GOMAXPROCS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$BIN" retrieval --checkpoint "$dir/best.safetensors" \
    --data out/flickr8k --split val --dataset flickr8k-val --examples 0 --out "$dir/eval/retrieval.json" >>"$log" 2>&1 ||
    { echo "ablation: $name retrieval failed; see $log" >&2; return 1; }
  echo "ablation: $name done in $(( SECONDS - t0 )) s"
}

fail=0
for a in $ARMS; do
  if [ "$JOBS" -gt 1 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || fail=1; done
    run "$a" &
  else
    run "$a" || fail=1
  fi
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || fail=1; done
python3 scripts/ablation_table.py --arms "$ARMS_FILE" --out-dir "$OUT" >"$OUT/table.md"
echo "ablation: table in $OUT/table.md"
exit $fail
