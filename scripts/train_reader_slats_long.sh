#!/usr/bin/env bash
# Stage 2 of the bundled whole-photo reader (weights/MODEL.md; stage 3, scripts/train_reader_letters_whole.sh,
# starts from it): windows, slats and letters as lookalikes, 300,000 image views in all (issue 22): the slats
# run (scripts/train_reader_slats.sh, made first when runs/reader/slats/best.pt is missing) continued 120,000
# views on 12,000 new images of the same mix (configs/reader-slats-long.yaml: seed 6, crop 0.3, tight 0.15,
# plaque 0.15, scene 0.2, sign 0.2, slats on 40 % of scene and sign walls), packed beside its run
# (runs/reader/slats-long/reader-slats-long-resnet18-l3.pt; the shipped whole-photo reader until 2026-12-05).
# About 80 minutes on 2 CPU cores after the first stage's 50; a checkpoint every epoch (12,000 images).
# Interrupted? Run it again with --resume: it continues from the run folder (the data is made once).
#   bash scripts/train_reader_slats_long.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
[ -f runs/reader/slats/best.pt ] || bash scripts/train_reader_slats.sh
DATA=data/reader-slats-long RUN=runs/reader/slats-long
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 12000 --valid 500 --test 0 --seed 6 --workers 2 \
    --modes crop=0.3,tight=0.15,plaque=0.15,scene=0.2,sign=0.2 --slats 0.4
fi
.venv/bin/digitdet train --config reader-slats-long --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-slats-long-resnet18-l3.pt" --command "bash scripts/train_reader_slats_long.sh"
