#!/usr/bin/env bash
# Reproduces the no-number head of the shipped line recogniser, src/digitdet/weights/line-crnn.pt (since
# 2026-12-07 evening; weights/MODEL.md): a logistic head fitted on the recogniser's frozen features, its own
# weights (scripts/train_line.sh's) copied as they are. Lines with numbers and random number-free regions of
# synthetic photos (`line prepare --blanks`), and the regions where the bundled pair reads a number in
# number-free crops (`line mine`). Each step is skipped when done. About 30 min of synthetic data, 15 min of
# mining and 2 min of fitting on 2 CPU cores.
#   bash scripts/train_line_blanks.sh 2>&1 | tee -a logs/train-line-blanks.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
digitdet=.venv/bin/digitdet
mkdir -p data/line
[ -f data/line50/train.json ] || $digitdet synth data/line50 --train 80000 --valid 0 --test 0 --seed 50 \
  --modes crop=0.15,tight=0.15,plaque=0.1,relief=0.25,cut=0.35
[ -f data/blank62/train.json ] || $digitdet synth data/blank62 --train 6000 --valid 0 --test 0 --seed 62 \
  --modes scene=0.35,sign=0.35,plaque=0.3
[ -f data/line/blank62.npz ] || $digitdet line prepare data/blank62 data/line50 --out data/line/blank62.npz \
  --context 1 --seed 62 --blanks 24000
hard=()
for s in 62 162 262; do
  [ -f data/line/hard$s.npz ] || $digitdet line mine data/blank62 --out data/line/hard$s.npz --n 6000 --seed $s
  hard+=(data/line/hard$s.npz)
done
$digitdet line blank-head src/digitdet/weights/line-crnn.pt --lines data/line/blank62.npz --hard "${hard[@]}" \
  --numbers 20000 --blanks 15000 --seed 0 --out src/digitdet/weights/line-crnn.pt
