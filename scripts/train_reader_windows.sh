#!/usr/bin/env bash
# The whole-photo reader with windows as lookalikes (issue 22): scripts/train_reader_photos.sh's data and
# budget (reader v1 fine-tuned 40,000 views on 10,000 images, seed 4, led by sign and scene photos) with
# configs/reader-windows.yaml: the generator's window boxes (and letters) learned as a lookalike class.
# The same seed gives the same pixels as data/reader-photos; only the lookalike boxes are new.
# About an hour on 2 CPU cores; a checkpoint every epoch (10,000 images).
# Interrupted? Run it again with --resume: it continues from runs/reader/windows (the data is made once).
#   bash scripts/train_reader_windows.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
DATA=data/reader-windows
RUN=runs/reader/windows
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 10000 --valid 500 --test 0 --seed 4 --workers 2 \
    --modes sign=0.35,scene=0.35,plaque=0.1,crop=0.1,tight=0.1
fi
.venv/bin/digitdet train --config reader-windows --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out "$RUN/reader-windows-resnet18-l3.pt" --command "bash scripts/train_reader_windows.sh"
