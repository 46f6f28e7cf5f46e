#!/usr/bin/env bash
# The report's three studies at a reduced CPU budget, as docs/results.md ("The report's three studies")
# shows them (~35-40 min on 2 cores):
#   1. `digitdet ablate`: the CPU baseline, anchors x2 / +4 and super-resolution x2 / x4 (each trained with
#      the same seed for the same minutes), NMS 0.5 / 0.7 and no duplicate suppression (baseline weights);
#   2. `digitdet sweep` of NMS, score and dedup thresholds (and dedup off) from one checkpoint, no retraining;
#   3. `digitdet errors`: the wrongly read numbers, by kind.
# Data: data/synth (the demo's; generated when missing). Checkpoint for 2 and 3: runs/demo/best.pt when
# `bash scripts/demo.sh` has run, else the ablation's baseline. Outputs go to runs/study/; then
# scripts/readme_results.py copies the reports into docs/results/ and rewrites the section between the
# results markers of docs/results.md (README.md is not touched).
# Arguments go to `digitdet ablate` (e.g. `--minutes 10`, `--force`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
dd=(.venv/bin/digitdet -q)
data=data/synth
runs=runs/study
start=$(date +%s)
if [ ! -f "$data/train.json" ] || [ ! -f "$data/valid.json" ] || [ ! -f "$data/test.json" ]; then
  "${dd[@]}" synth "$data" --train 8000 --valid 500 --test 500 --seed 0   # the demo's dataset (demo.DEFAULT_COUNTS)
fi
"${dd[@]}" ablate --base configs/cpu.yaml configs/ablations/*.yaml --data "$data" --out "$runs/ablate" \
  --minutes 4 "$@"
ckpt=runs/demo/best.pt
[ -f "$ckpt" ] || ckpt="$runs/ablate/baseline/best.pt"
# One change at a time from the checkpoint's own row (cpu.yaml: nms 0.3, score 0.05, dedup 0.3).
"${dd[@]}" sweep --checkpoint "$ckpt" --data "$data" --out "$runs/sweep" nms=0.5,0.7 score=0.3,0.65 dedup=0.5
"${dd[@]}" errors --checkpoint "$ckpt" --data "$data" --out "$runs/errors"
minutes=$(( ($(date +%s) - start + 30) / 60 ))
.venv/bin/python scripts/readme_results.py "$runs" docs/results.md docs/results --minutes "$minutes"
echo "study: $minutes min; docs/results.md (the report's three studies) and docs/results/ rewritten from $runs"
