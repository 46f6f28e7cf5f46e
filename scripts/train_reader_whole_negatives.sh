#!/usr/bin/env bash
# The whole-photo reader continued with number-free photos as negatives (configs/reader-whole-negatives.yaml,
# weights/MODEL.md "2026-12-08 (b)"): 6,000 fresh images of stage 3's mix (seed 84, slats and letters as
# lookalikes) and the 2,071 number-free crops of scripts/make_negatives.sh (appended by scripts/add_negatives.py),
# 16,000 views from the shipped whole-photo reader. About 15 minutes on 2 CPU cores. The candidate is packed
# to runs/reader/whole-neg/reader-whole-neg.pt (a candidate is shipped only after benchmarks/pair_with.py
# judges it by a rule written first).
#   bash scripts/train_reader_whole_negatives.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
D=.venv/bin/digitdet
DATA=data/reader-whole-neg
RUN=runs/reader/whole-neg
bash scripts/make_negatives.sh
if [ ! -f "$DATA/train.json" ] || ! grep -q '"neg-' "$DATA/train.json"; then
  rm -rf "$DATA"
  $D -q synth "$DATA" --train 6000 --valid 300 --test 0 --seed 84 --workers 2 \
    --modes crop=0.3,tight=0.15,plaque=0.15,scene=0.2,sign=0.2 --slats 0.4 --letters 0.25
  .venv/bin/python scripts/add_negatives.py "$DATA" data/neg-blank
fi
$D train --config reader-whole-negatives --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-whole-neg.pt" --command "bash scripts/train_reader_whole_negatives.sh"
