#!/usr/bin/env bash
# Reader v2 continued with number-free photos as negatives (configs/reader-v2-negatives.yaml, weights/MODEL.md
# "2026-12-08 (b)"): 8,000 fresh images of v2's mix (seed 81) and 2,400 number-free crops of 2,700 scene, sign
# and plaque photos (seed 82, benchmarks/blank_crops.py on their train split, scripts/add_negatives.py),
# 24,000 views from the shipped v2. About 25 minutes on 2 CPU cores (16 img/s). The candidate is
# runs/reader/v2-neg/best.pt, packed to runs/reader/v2-neg/reader-v2-neg.pt (not into the package: a
# candidate is shipped only after benchmarks/pair_with.py judges it by a rule written first).
# Interrupted? Run it again with --resume (the data is made once).
#   bash scripts/train_reader_v2_negatives.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
D=.venv/bin/digitdet
DATA=data/reader-v2-neg
RUN=runs/reader/v2-neg
if [ ! -f "$DATA/train.json" ] || ! grep -q '"neg-' "$DATA/train.json"; then
  rm -rf "$DATA" "$DATA-src" "$DATA-blank"
  $D -q synth "$DATA" --train 8000 --valid 300 --test 0 --seed 81 --workers 2 \
    --modes crop=0.2,tight=0.15,plaque=0.1,scene=0.1,relief=0.15,cut=0.2,sign=0.1
  for m in scene sign plaque; do
    $D -q synth "$DATA-src/$m" --train 900 --valid 0 --test 0 --seed 82 --workers 2 --modes "$m=1"
  done
  .venv/bin/python benchmarks/blank_crops.py "$DATA-src/scene" "$DATA-src/sign" "$DATA-src/plaque" --split train \
    --n 2400 --seed 82 --out "$DATA-blank"
  .venv/bin/python scripts/add_negatives.py "$DATA" "$DATA-blank"
fi
$D train --config reader-v2-negatives --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-v2-neg.pt" --command "bash scripts/train_reader_v2_negatives.sh"
