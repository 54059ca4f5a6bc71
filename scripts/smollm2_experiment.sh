#!/usr/bin/env bash
# The SmolLM2-135M experiment of README "On a real model": train INTUITOR, GRPO on gold answers and GRPO-PV
# (recipes/SmolLM2-135M/, 2 seeds each) from SmolLM2-135M-Instruct, evaluate base and every run on held-out
# arithmetic (greedy; 8 samples for best-of-N) and on GSM8K (out of domain), then analyse and tabulate.
#
#   bash scripts/smollm2_experiment.sh            # after scripts/setup.sh; about 2 hours on a 2-core CPU, 24 GB
#
# Every step is skipped when its output exists, so a rerun resumes. Training runs one at a time on all cores (a run
# holds 10-14 GB: two at once do not fit in 24 GB); evaluations run two at a time, one core each. Wall times go
# to OUT/timings.tsv; the table to docs/smollm2/results.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."

I=${INTUITOR:-.venv/bin/intuitor}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/smollm2}
DATA=${DATA:-../shared/data}
SEEDS=${SEEDS:-"0 1"}
mkdir -p "$OUT/logs"

# job NAME CORE CMD... and run_queue WORKERS "NAME|CMD"...: resumable jobs, one or two at a time
source scripts/jobs.sh

RUNS=()
for method in intuitor grpo-gold grpo-pv; do for s in $SEEDS; do RUNS+=("$method-seed$s"); done; done

# 1. training
queue=()
for run in "${RUNS[@]}"; do
  method=${run%-seed*}; seed=${run##*-seed}
  queue+=("train-$run|$I train recipes/SmolLM2-135M/$method-arithmetic.yaml --seed $seed --output_dir $OUT/$run")
done
run_queue 1 "${queue[@]}"

# 2. evaluation: base model (the GGUF) and each run's final model. Best of 8 for the base and INTUITOR only: 800
# responses per model take 12 minutes on one core, and the question is what training on self-certainty does to it
model_of() { [[ $1 == base ]] && echo smollm2-gguf || echo "$OUT/$1"; }
MODELS=(base "${RUNS[@]}")
BON_MODELS=(base); for s in $SEEDS; do BON_MODELS+=("intuitor-seed$s"); done
ARITH="--tasks arithmetic --limit 200 --max-new-tokens 128 --batch-size 100 --no-progress"
OOD="--tasks gsm8k --data-dir $DATA --limit 100 --max-new-tokens 192 --batch-size 50 --no-progress"
BON="--tasks arithmetic --limit 100 --samples 8 --temperature 0.9 --max-new-tokens 128 --batch-size 100 --no-progress"
queue=()
eval_job() { queue+=("eval-$1-$2|$I eval $(model_of "$2") $3 --output-dir $OUT/$2/eval/$1"); }
for m in "${MODELS[@]}"; do eval_job greedy "$m" "$ARITH"; done
for m in "${BON_MODELS[@]}"; do eval_job sampled8 "$m" "$BON"; done  # the long ones early: the two cores end together
for m in "${MODELS[@]}"; do eval_job gsm8k "$m" "$OOD"; done
run_queue 2 "${queue[@]}"

# 3. analysis: calibration before/after, best-of-N, curves, one HTML report per INTUITOR run, the table
greedy=(); sampled=()
for m in "${MODELS[@]}"; do greedy+=("$OUT/$m/eval/greedy"); done
for m in "${BON_MODELS[@]}"; do sampled+=("$OUT/$m/eval/sampled8"); done
mkdir -p docs/smollm2
$I analyze "${sampled[@]}" --out-dir docs/smollm2 --json "$OUT/analyze_sampled8.json" > "$OUT/logs/analyze.log"
$I analyze "${greedy[@]}" --out-dir "$OUT/analyze_greedy" --json "$OUT/analyze_greedy.json" >> "$OUT/logs/analyze.log"
for m in "${BON_MODELS[@]}"; do
  $I select "$OUT/$m/eval/sampled8/samples.jsonl" --json "$OUT/$m/eval/sampled8/select.json" > /dev/null
done
runs=(); for run in "${RUNS[@]}"; do runs+=("$OUT/$run"); done
$I curves "${runs[@]}" --out-dir "$OUT/curves" > "$OUT/logs/curves.log"
cp "$OUT"/curves/{accuracy,self_certainty,length}.png docs/smollm2/
for s in $SEEDS; do $I report "$OUT/intuitor-seed$s" > /dev/null; done
$PY scripts/smollm2_table.py "$OUT" docs/smollm2
