#!/usr/bin/env bash
# The long SmolLM2-135M runs (issue "the method on a real model, long enough to fail"): INTUITOR online (3 seeds),
# INTUITOR with the offline annotator (a frozen copy of the initial model, 2 seeds) and GRPO on gold answers
# (1 seed), each UPDATES updates from the recipes of recipes/SmolLM2-135M/ (4 prompts x G=7 per update, every prompt
# seen once), the collapse guard on `warn`, a checkpoint every EVERY updates; every checkpoint and the base model
# evaluated greedily on the 200 held-out `arithmetic` rows. Then scripts/smollm2_long_table.py writes
# docs/smollm2/long.json, long.md and the figures.
#
#   bash scripts/smollm2_long.sh         # after scripts/setup.sh; ~40 min of training per run on a 2-core CPU
#
# One run at a time, start to finish: train (all cores; a run holds 10-14 GB), evaluate its checkpoints two at a
# time (one core each), copy the small result files (run config, metrics, guard events, each evaluation's results and
# samples) to RESULTS/<run>/, then delete the checkpoints' weights (540 MB each) but the one the guard kept. A run
# whose RESULTS/<run>/done exists is skipped, so committing RESULTS/ after each run lets a fresh machine go on
# where the last one stopped. Knobs (environment): OUT, RESULTS, UPDATES, EVERY, ONLINE_SEEDS, OFFLINE_SEEDS,
# GOLD_SEEDS, TRAIN_FLAGS (extra `intuitor train` flags), EVAL_FLAGS (extra `intuitor eval` flags), BASE_MODEL,
# TABLE (where the table and figures go).
set -euo pipefail
cd "$(dirname "$0")/.."

I=${INTUITOR:-.venv/bin/intuitor}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/smollm2-long}
RESULTS=${RESULTS:-docs/smollm2/long}
UPDATES=${UPDATES:-32}
EVERY=${EVERY:-4}
ONLINE_SEEDS=${ONLINE_SEEDS:-"0 1 2"}
OFFLINE_SEEDS=${OFFLINE_SEEDS:-"0 1"}
GOLD_SEEDS=${GOLD_SEEDS:-"0"}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
EVAL_FLAGS=${EVAL_FLAGS:-"--limit 200 --max-new-tokens 128 --batch-size 100"}
BASE_MODEL=${BASE_MODEL:-smollm2-gguf}
TABLE=${TABLE:-docs/smollm2}
mkdir -p "$OUT/logs" "$RESULTS"
source scripts/jobs.sh

EVAL="--tasks arithmetic --no-progress $EVAL_FLAGS"

# keep RUN_DIR DEST: the small files of a run (or of the base model's evaluation) that the table reads
keep() {
  local src=$1 dest=$2 f
  mkdir -p "$dest"
  for f in run_config.json metrics.jsonl guard.jsonl guard_keep.json; do [[ -e $src/$f ]] && cp "$src/$f" "$dest/"; done
  if [[ -d $src/eval ]]; then
    (cd "$src" && find eval -name results.json -o -name samples.jsonl) | while read -r f; do
      mkdir -p "$dest/$(dirname "$f")"; cp "$src/$f" "$dest/$f"
    done
  fi
  touch "$dest/done"
}

# 0. the base model: update 0 of every curve
if [[ ! -e $RESULTS/base/done ]]; then
  job eval-base any $I eval "$BASE_MODEL" $EVAL --output-dir "$OUT/base/eval/greedy"
  keep "$OUT/base" "$RESULTS/base"
fi

# 1. each run: train, evaluate every checkpoint, keep the results, free the disk
# interleaved (online 0, offline 0, gold 0, online 1, ...) so that a session that stops early leaves every method
runs=()
read -ra on <<<"$ONLINE_SEEDS"; read -ra off <<<"$OFFLINE_SEEDS"; read -ra gold <<<"$GOLD_SEEDS"
for ((i = 0; i < ${#on[@]} || i < ${#off[@]} || i < ${#gold[@]}; i++)); do
  if [[ -n ${on[i]:-} ]]; then runs+=("intuitor-seed${on[i]}"); fi
  if [[ -n ${off[i]:-} ]]; then runs+=("intuitor-offline-seed${off[i]}"); fi
  if [[ -n ${gold[i]:-} ]]; then runs+=("grpo-gold-seed${gold[i]}"); fi
done

for run in "${runs[@]}"; do
  if [[ -e $RESULTS/$run/done ]]; then echo "skip $run (results kept)"; continue; fi
  method=${run%-seed*}; seed=${run##*-seed}
  recipe=recipes/SmolLM2-135M/${method%-offline}-arithmetic.yaml
  extra=""; [[ $method == intuitor-offline ]] && extra="--annotator offline"
  job "train-$run" any $I train "$recipe" --seed "$seed" --output_dir "$OUT/$run" \
    --max_steps "$UPDATES" --dataset_limit $((UPDATES * 4)) \
    --save_strategy steps --save_steps "$EVERY" --save_only_model true --guard warn $extra $TRAIN_FLAGS
  queue=()
  for ckpt in "$OUT/$run"/checkpoint-*; do
    name=$(basename "$ckpt")
    queue+=("eval-$run-$name|$I eval $ckpt $EVAL --output-dir $OUT/$run/eval/$name/greedy")
  done
  run_queue 2 "${queue[@]}"
  keep "$OUT/$run" "$RESULTS/$run"
  kept=$($PY -c "import json,sys; print(json.load(open(sys.argv[1])).get('checkpoint') or '')" \
    "$OUT/$run/guard_keep.json" 2>/dev/null || true)
  for ckpt in "$OUT/$run"/checkpoint-*; do
    [[ $(basename "$ckpt") == "$kept" ]] || rm -f "$ckpt"/*.safetensors
  done
  echo "$(date +%T) $run kept in $RESULTS/$run: commit it (git add $RESULTS/$run)"
done

# 2. the table, the data and the figures
$PY scripts/smollm2_long_table.py "$RESULTS" "$TABLE"
