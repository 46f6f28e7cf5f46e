#!/usr/bin/env bash
# The wheels a lent GPU machine's python (3.12, torch 2.11 / torchvision 0.26, numpy, pillow, pyyaml, tqdm,
# matplotlib and scikit-image preinstalled; nothing can be fetched there) lacks for `digitdet synth` and
# `digitdet train`: faster-coco-eval (built for CPython 3.12) and the font-* packages (sdists, built here into
# pure-Python wheels). Into .whl/ (gitignored, 3.8 MB), for scripts/gpu_train_reader.sh; run here, once.
#   bash scripts/gpu_wheels.sh [PYTHON_VERSION]    # default 3.12, the device's
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${1:-3.12}"
PIP=(.venv/bin/python -m pip)
rm -rf .whl && mkdir -p .whl
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "faster-coco-eval==1.8.0"
"${PIP[@]}" wheel -q --no-deps -w .whl font-roboto==0.0.1 font-lato==0.1.0 font-fjallaone==0.1.7 \
  font-caladea==0.0.2 font-manrope==0.0.2
ls -1 .whl
