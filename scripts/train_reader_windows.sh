#!/usr/bin/env bash
# The whole-photo reader with windows as lookalikes (issue 22): scripts/train_reader_photos.sh's data and
# budget (reader v1 fine-tuned 40,000 views on 10,000 images, seed 4, led by sign and scene photos) with
# configs/reader-windows.yaml: the generator's window boxes (and letters) learned as a lookalike class.
# Interrupted? Run it again with --resume: it continues from runs/reader/windows.
#   bash scripts/train_reader_windows.sh [--resume]
CONFIG=reader-windows exec bash "$(dirname "$0")/train_reader_photos.sh" "$@"
