#!/usr/bin/env bash
# Reproduces the vetoer shipped inside src/digitdet/weights/line-crnn.pt since 2026-12-07 (weights/MODEL.md,
# "a second recogniser says no number"): the shipped recogniser fine-tuned with number-free lines (V1: random
# number-free regions beside number lines; V2: then the regions where the bundled pair reads a number in
# number-free crops, four times over), packed beside it as int8. Run after scripts/train_line.sh and
# scripts/train_line_blanks.sh (they leave the float16 recogniser with its no-number head in weights/); this
# re-packs that file as int8 (half the bytes, within the shipped weights' 40 MB) with V2 as its vetoer. The
# recogniser that reads and disputes is unchanged but for the int8 storage. Each step is skipped when done;
# training resumes. About 45 min of synthetic data, 15 min of mining and 35 min of training on 2 CPU cores.
#   bash scripts/train_line_veto.sh 2>&1 | tee -a logs/train-line-veto.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
digitdet=.venv/bin/digitdet
python=.venv/bin/python
shipped=src/digitdet/weights/line-crnn.pt
if $python -c "import sys, torch; sys.exit('veto' not in torch.load('$shipped', weights_only=True))"; then
  echo "$shipped already holds a vetoer: restore the float16 file (scripts/train_line.sh, train_line_blanks.sh) first" >&2
  exit 1
fi
mkdir -p data/line
close=crop=0.15,tight=0.15,plaque=0.1,relief=0.25,cut=0.35
[ -f data/line40/train.json ] || $digitdet synth data/line40 --train 100000 --valid 0 --test 0 --seed 40 \
  --modes crop=0.2,tight=0.2,plaque=0.15,relief=0.2,cut=0.25
[ -f data/line50/train.json ] || $digitdet synth data/line50 --train 80000 --valid 0 --test 0 --seed 50 --modes $close
[ -f data/line52/train.json ] || $digitdet synth data/line52 --train 40000 --valid 0 --test 0 --seed 52 --modes $close
[ -f data/blank62/train.json ] || $digitdet synth data/blank62 --train 6000 --valid 0 --test 0 --seed 62 \
  --modes scene=0.35,sign=0.35,plaque=0.3
[ -f data/line/train40-ctx.npz ] || $digitdet line prepare data/line40 --out data/line/train40-ctx.npz --context 1 --seed 40
[ -f data/line/train52-ctx.npz ] || $digitdet line prepare data/line52 --out data/line/train52-ctx.npz --context 1 --seed 52
[ -f data/line/blank62.npz ] || $digitdet line prepare data/blank62 data/line50 --out data/line/blank62.npz \
  --context 1 --seed 62 --blanks 24000
hard=()  # mined by the pair alone (`line mine` reads with predict.line_margin=null: no dispute, no veto)
for s in 62 162 262; do
  [ -f data/line/hard$s.npz ] || $digitdet line mine data/blank62 --out data/line/hard$s.npz --n 6000 --seed $s
  hard+=(data/line/hard$s.npz)
done
$digitdet line train data/line/blank62.npz data/line/train40-ctx.npz data/line/train52-ctx.npz \
  --out runs/lineV1/line.pt --width 1.5 --epochs 1 --lr 5e-4 --init $shipped --seed 0 --resume
$digitdet line train data/line/blank62.npz "${hard[@]}" "${hard[@]}" "${hard[@]}" "${hard[@]}" \
  --out runs/lineV2/line.pt --width 1.5 --epochs 1 --lr 5e-4 --init runs/lineV1/line.pt --seed 0 --resume
$digitdet line pack $shipped --out $shipped --int8 --veto runs/lineV2/line.pt \
  --note "the shipped recogniser as int8 with its no-number head, and run V2 as its vetoer (predict.line_veto)"
