#!/usr/bin/env bash
# Reproduces reader v2 (issue 22), the bundled reader's close-up reader (reading/routing.py), from reader v1,
# in two stages, each packed into src/digitdet/weights/reader-v2-resnet18-l3.pt (the shipped file,
# weights/MODEL.md) as float16 weights + config + reading threshold:
#   1. the generator's full mix of modes (30,000 training images, seed 2, the relief, cut and sign modes
#      included), configs/reader-v2.yaml: v1 fine-tuned for 150,000 image views;
#   2. 30,000 fresh images (seed 3) led by the close-up modes, configs/reader-v2-stage2.yaml: stage 1's
#      packed file fine-tuned for 80,000 more views at half the rate (100,000 + 150,000 + 80,000 = 330,000 views
#      from the glyph trunk to the shipped file).
# About 2.5 + 1.5 hours on 2 CPU cores (14-19 img/s, AMD EPYC); a checkpoint every epoch (30,000 images).
# Interrupted? Run it again with --resume: a finished stage resumes as a no-op and is packed again (so stage
# 2 always starts from stage 1), the unfinished one continues from its last.pt (the data is made once).
#   bash scripts/train_reader_v2.sh [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
OUT=src/digitdet/weights/reader-v2-resnet18-l3.pt
stage() {  # stage DATA RUN CONFIG SEED MODES [train args]
  local data=$1 run=$2 config=$3 seed=$4 modes=$5
  shift 5
  if [ ! -f "$data/digitdet-synth.json" ]; then
    .venv/bin/digitdet synth "$data" --train 30000 --valid 500 --test 500 --seed "$seed" --workers 2 --modes "$modes"
  fi
  .venv/bin/digitdet train --config "$config" --data "$data" --out "$run" "$@"
  .venv/bin/python scripts/pack_reader.py --checkpoint "$run/best.pt" --data "$data" --out "$OUT" \
    --command "bash scripts/train_reader_v2.sh"
}
stage data/reader-v2 runs/reader/v2 reader-v2 2 crop=0.2,tight=0.15,plaque=0.1,scene=0.1,relief=0.15,cut=0.2,sign=0.1 "$@"
stage data/reader-v2-stage2 runs/reader/v2-stage2 reader-v2-stage2 3 \
  cut=0.3,relief=0.25,tight=0.15,crop=0.1,plaque=0.1,sign=0.05,scene=0.05 "$@"
