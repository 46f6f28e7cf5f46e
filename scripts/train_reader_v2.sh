#!/usr/bin/env bash
# Reproduces reader v2 (issue 22), the bundled reader's close-up reader (reading/routing.py), from reader v1:
# the generator's full mix of modes (30,000 training images, seed 2, the relief, cut and sign modes
# included), configs/reader-v2.yaml (v1 fine-tuned for 150,000 image views), then packing best.pt as
# float16 weights + config + reading threshold into src/digitdet/weights/reader-v2-resnet18-l3.pt, the
# shipped file (weights/MODEL.md).
# About 2.5 hours on 2 CPU cores (16-19 img/s, AMD EPYC); a checkpoint every epoch (30,000 images).
# Interrupted? Run it again with --resume: it continues from runs/reader/v2 (the data is made once).
#   bash scripts/train_reader_v2.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
DATA=data/reader-v2
RUN=runs/reader/v2
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 30000 --valid 500 --test 500 --seed 2 --workers 2 \
    --modes crop=0.2,tight=0.15,plaque=0.1,scene=0.1,relief=0.15,cut=0.2,sign=0.1
fi
.venv/bin/digitdet train --config reader-v2 --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out src/digitdet/weights/reader-v2-resnet18-l3.pt --command "bash scripts/train_reader_v2.sh"
