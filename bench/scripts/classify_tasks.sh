#!/bin/bash
# Each built-in classification task trained with the default settings for 4.75 minutes (MINUTES) on 2
# threads, so that data generation, the last validation and the plots fit in 5 minutes of wall time, then
# scored on its test split. The runs go to RUNS (default: a fresh temporary directory); OUT (default
# bench/hosts/amd-epyc/classify_tasks) receives <task>.log, <task>.eval.json (eval-classifier --json), <task>.uptime (the
# load before and after), <task>.metrics.jsonl, <task>.curve.png and <task>.confusion.png.
# Run from the repository root: bash bench/hosts/amd-epyc/classify_tasks.sh
set -e
OUT=${OUT:-bench/hosts/amd-epyc/classify_tasks}
RUNS=${RUNS:-$(mktemp -d)}
mkdir -p "$OUT"
for task in brackets languages majority; do
    uptime > "$OUT/$task.uptime"
    start=$(date +%s)
    python -m rnnkit.cli train-classifier --task "$task" --minutes "${MINUTES:-4.75}" --threads 2 \
        --out "$RUNS/$task" --overwrite --no-progress > "$OUT/$task.log" 2>&1
    echo "wall seconds (data generation, training, validation, plots): $(( $(date +%s) - start ))" >> "$OUT/$task.log"
    python -m rnnkit.cli eval-classifier "$RUNS/$task" --json --plot "$OUT/$task.confusion.png" > "$OUT/$task.eval.json"
    uptime >> "$OUT/$task.uptime"
    cp "$RUNS/$task/metrics.jsonl" "$OUT/$task.metrics.jsonl"
    cp "$RUNS/$task/curve.png" "$OUT/$task.curve.png"
done
