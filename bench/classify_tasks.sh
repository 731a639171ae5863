#!/bin/bash
# Each built-in classification task trained with the default settings for 5 minutes on 2 threads, then
# scored on its test split; writes bench/classify_tasks/<task>.{log,eval.json,uptime} (and the runs' own
# curve.png and confusion-test.png). Run from the repository root: bash bench/classify_tasks.sh
set -e
OUT=${OUT:-bench/classify_tasks}
mkdir -p "$OUT"
for task in brackets languages majority; do
    uptime > "$OUT/$task.uptime"
    start=$(date +%s)
    python -m rnnkit.cli train-classifier --task "$task" --minutes 5 --threads 2 --out "$OUT/$task" --overwrite \
        --no-progress > "$OUT/$task.log" 2>&1
    echo "wall seconds (data generation, training, validation): $(( $(date +%s) - start ))" >> "$OUT/$task.log"
    python -m rnnkit.cli eval-classifier "$OUT/$task" --json > "$OUT/$task.eval.json"
    uptime >> "$OUT/$task.uptime"
done
