#!/usr/bin/env bash
# The whole-photo reader with windows as lookalikes, on v1's own kinds of photos plus signs (issue 22):
# reader v1 fine-tuned 80,000 views (configs/reader-windows-mix.yaml) on 10,000 images (seed 5: crop 0.3,
# tight 0.15, plaque 0.15, scene 0.2, sign 0.2), packed into the run folder.
# SLATS=P (what scripts/train_reader_slats.sh sets) makes the same images with a panel of vertical slats on
# a scene or sign photo's wall at chance P (`digitdet synth --slats`; the other modes' images are the same
# bytes) in data/reader-slats, and trains runs/reader/slats from it.
# About 50 minutes on 2 CPU cores; a checkpoint every epoch (10,000 images).
# Interrupted? Run it again with --resume: it continues from the run folder (the data is made once).
#   bash scripts/train_reader_windows_mix.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if [ -n "${SLATS:-}" ]; then
  DATA=data/reader-slats RUN=runs/reader/slats extra=(--slats "$SLATS") script=train_reader_slats.sh
else
  DATA=data/reader-windows-mix RUN=runs/reader/windows-mix80 extra=() script=train_reader_windows_mix.sh
fi
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 10000 --valid 500 --test 0 --seed 5 --workers 2 \
    --modes crop=0.3,tight=0.15,plaque=0.15,scene=0.2,sign=0.2 "${extra[@]}"
fi
.venv/bin/digitdet train --config reader-windows-mix --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-windows-mix-resnet18-l3.pt" --command "bash scripts/$script"
