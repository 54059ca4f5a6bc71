# Shared by the SmolLM2 experiment drivers (scripts/smollm2_experiment.sh, scripts/smollm2_long.sh): resumable jobs
# and a two-core queue. Expects OUT to be set; source it, do not run it.

# one job: NAME CORE CMD...; skipped once OUT/logs/NAME.done exists (written when CMD succeeds); its wall time is
# appended to timings.tsv
job() {
  local name=$1 core=$2; shift 2
  if [[ -e $OUT/logs/$name.done ]]; then echo "skip $name (done)"; return; fi
  echo "$(date +%T) start $name"
  local t0; t0=$(date +%s)
  if [[ $core == any ]]; then "$@" > "$OUT/logs/$name.log" 2>&1
  else OMP_NUM_THREADS=1 taskset -c "$core" "$@" > "$OUT/logs/$name.log" 2>&1; fi
  printf '%s\t%s\n' "$name" $(( $(date +%s) - t0 )) >> "$OUT/timings.tsv"
  touch "$OUT/logs/$name.done"
  echo "$(date +%T) done  $name ($(( $(date +%s) - t0 )) s)"
}

# run_queue WORKERS JOB...: run "NAME|CMD" jobs; with 2 workers (and 2 CPUs), two workers pinned to
# cores 0 and 1 each take the next job when they finish one (a counter under flock); else one at a time
run_queue() {
  local workers=$1; shift
  local -a queue=("$@")
  if (( workers < 2 || $(nproc) < 2 )); then
    for q in "${queue[@]}"; do IFS='|' read -r n c <<< "$q"; job "$n" any bash -c "$c"; done
    return
  fi
  local counter; counter=$(mktemp); echo 0 > "$counter"
  worker() {
    local core=$1 i
    while true; do
      i=$(flock "$counter" bash -c 'i=$(cat "$1"); echo $(( i + 1 )) > "$1"; echo "$i"' _ "$counter")
      (( i < ${#queue[@]} )) || return 0
      IFS='|' read -r n c <<< "${queue[i]}"; job "$n" "$core" bash -c "$c"
    done
  }
  worker 0 & local w0=$!
  worker 1 & local w1=$!
  wait "$w0" "$w1"; rm -f "$counter"
}
