#!/usr/bin/env bash
# Reproduces the bundled whole-photo reader, src/digitdet/weights/reader-whole-resnet18-l3.pt (weights/MODEL.md):
# windows, slats and letters as lookalikes, 364,000 image views in all (issue 22). Stage 2
# (scripts/train_reader_slats_long.sh, made first when its packed file is missing, with stage 1) continued
# 64,000 views on 8,000 new images of the same mix with a letter after the number in a quarter of them
# (configs/reader-letters-whole.yaml: seed 9, crop 0.3, tight 0.15, plaque 0.15, scene 0.2, sign 0.2, slats
# on 40 % of scene and sign walls, --letters 0.25), packed into the weights folder.
# About 50 minutes on 2 CPU cores after the earlier stages; a checkpoint every epoch (8,000 images).
# Interrupted? Run it again with --resume: it continues from the run folder (the data is made once).
# Stage 2 exactly as this run started from it, without its three hours: it was shipped until commit 6b17075,
#   mkdir -p runs/reader/slats-long && git show 6b17075:src/digitdet/weights/reader-whole-resnet18-l3.pt \
#     > runs/reader/slats-long/reader-slats-long-resnet18-l3.pt
#   bash scripts/train_reader_letters_whole.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
[ -f runs/reader/slats-long/reader-slats-long-resnet18-l3.pt ] || bash scripts/train_reader_slats_long.sh
DATA=data/reader-letters-whole RUN=runs/reader/letters-whole
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 8000 --valid 500 --test 0 --seed 9 --workers 2 \
    --modes crop=0.3,tight=0.15,plaque=0.15,scene=0.2,sign=0.2 --slats 0.4 --letters 0.25
fi
.venv/bin/digitdet train --config reader-letters-whole --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out src/digitdet/weights/reader-whole-resnet18-l3.pt --command "bash scripts/train_reader_letters_whole.sh"
