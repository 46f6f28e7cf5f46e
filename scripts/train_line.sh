#!/usr/bin/env bash
# Reproduces the shipped line recogniser, src/digitdet/weights/line-crnn.pt (weights/MODEL.md): 250,000
# synthetic images of the close-up modes, their close-ups as 32 px lines, 4 epochs at channels x 1.5.
# Every step resumes: a finished step is skipped, training goes on from its last checkpoint
# (runs/line/line.pt, every 500 steps). About 45 min of data and 2.5 h of training on 2 CPU cores.
#   bash scripts/train_line.sh 2>&1 | tee -a logs/train-line.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
digitdet=.venv/bin/digitdet
modes=crop=0.2,tight=0.2,plaque=0.15,relief=0.2,cut=0.25
[ -f data/line40/train.json ] || $digitdet synth data/line40 --train 100000 --valid 0 --test 0 --seed 40 --modes $modes
[ -f data/line41/train.json ] || $digitdet synth data/line41 --train 150000 --valid 0 --test 0 --seed 41 --modes $modes
[ -f data/line/train.npz ] || $digitdet line prepare data/line40 data/line41 --out data/line/train.npz
$digitdet line train data/line/train.npz --out runs/line/line.pt --width 1.5 --epochs 4 --resume
$digitdet line pack runs/line/line.pt --out src/digitdet/weights/line-crnn.pt
