#!/usr/bin/env bash
# Reader v2 continued with number-free photos as negatives (configs/reader-v2-negatives.yaml, weights/MODEL.md
# "2026-12-08 (b)"): 8,000 fresh images of v2's mix (seed 81) and the 2,071 number-free crops of
# scripts/make_negatives.sh (appended by scripts/add_negatives.py), 24,000 views from the shipped v2. About 17
# minutes of training on 2 CPU cores (24 img/s, Intel Xeon), 2 minutes of data. The candidate is
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
bash scripts/make_negatives.sh
if [ ! -f "$DATA/train.json" ] || ! grep -q '"neg-' "$DATA/train.json"; then
  rm -rf "$DATA"
  $D -q synth "$DATA" --train 8000 --valid 300 --test 0 --seed 81 --workers 2 \
    --modes crop=0.2,tight=0.15,plaque=0.1,scene=0.1,relief=0.15,cut=0.2,sign=0.1
  .venv/bin/python scripts/add_negatives.py "$DATA" data/neg-blank
fi
$D train --config reader-v2-negatives --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-v2-neg.pt" --command "bash scripts/train_reader_v2_negatives.sh"
