#!/usr/bin/env bash
# The number-free crops both negatives runs train on (scripts/train_reader_v2_negatives.sh,
# scripts/train_reader_whole_negatives.sh), made once: 2,700 fresh scene, sign and plaque photos (seed 82, 900 a
# mode, their train split) in data/neg-src and up to 2,400 crops of them clear of every digit and lookalike
# (benchmarks/blank_crops.py; 2,071: a photo with no such room is passed over) in data/neg-blank, the layout
# scripts/add_negatives.py takes. A set already there is kept.
#   bash scripts/make_negatives.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=data/neg-src
BLANK=data/neg-blank
[ -f "$BLANK/numbers.csv" ] && exit 0
rm -rf "$SRC" "$BLANK"
for m in scene sign plaque; do
  .venv/bin/digitdet -q synth "$SRC/$m" --train 900 --valid 0 --test 0 --seed 82 --workers 2 --modes "$m=1"
done
.venv/bin/python benchmarks/blank_crops.py "$SRC/scene" "$SRC/sign" "$SRC/plaque" --split train --n 2400 --seed 82 \
  --out "$BLANK"
