#!/usr/bin/env bash
# Reproduces the bundled reader, src/digitdet/weights/reader-resnet18-l3.pt (see weights/MODEL.md):
# the generator's mix of modes (30,000 training images, seed 1), configs/reader.yaml (cpu.yaml's model and
# recipe, a 100,000-image budget), then packing best.pt as float16 weights + config + reading threshold.
# About an hour on 2 CPU cores; interrupted? run it again with --resume (it continues from runs/reader/mix).
#   bash scripts/train_reader.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
DATA=data/reader
RUN=runs/reader/mix
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  .venv/bin/digitdet synth "$DATA" --train 30000 --valid 500 --test 500 --seed 1 \
    --modes crop=0.4,tight=0.2,plaque=0.2,scene=0.2
fi
.venv/bin/digitdet train --config reader --data "$DATA" --out "$RUN" "$@"
.venv/bin/python scripts/pack_reader.py --checkpoint "$RUN/best.pt" --data "$DATA" \
  --out src/digitdet/weights/reader-resnet18-l3.pt
