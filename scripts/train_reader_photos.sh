#!/usr/bin/env bash
# The whole-photo reader (issue 22): reader v1 fine-tuned on 10,000 images (seed 4) led by whole photos
# (sign 0.35, scene 0.35, and plaque, crop, tight crops so that it still finds the big number the pair
# hands to v2) for 40,000 views (configs/reader-photos.yaml), packed into the run folder.
# CONFIG=reader-windows (what scripts/train_reader_windows.sh sets) trains the same with the windows and
# letters the generator boxes learned as a lookalike class (configs/reader-windows.yaml), on the same data.
# About an hour on 2 CPU cores; a checkpoint every epoch (10,000 images).
# Interrupted? Run it again with --resume: it continues from runs/reader/<photos|windows> (the data is made once).
#   bash scripts/train_reader_photos.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
CONFIG="${CONFIG:-reader-photos}"
DATA=data/reader-photos
RUN="runs/reader/${CONFIG#reader-}"
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 10000 --valid 500 --test 0 --seed 4 --workers 2 \
    --modes sign=0.35,scene=0.35,plaque=0.1,crop=0.1,tight=0.1
fi
.venv/bin/digitdet train --config "$CONFIG" --data "$DATA" --out "$RUN" "$@"
script="train_${CONFIG//-/_}.sh"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/$CONFIG-resnet18-l3.pt" --command "bash scripts/$script"
