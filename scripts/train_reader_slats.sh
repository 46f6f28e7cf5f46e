#!/usr/bin/env bash
# The whole-photo reader with windows and slats as lookalikes (issue 22): scripts/train_reader_windows_mix.sh
# on the same images with a panel of vertical slats on 40 % of the scene and sign walls (the slatted block
# wall under two real signs read as 111 and 11). About an hour on 2 CPU cores.
#   bash scripts/train_reader_slats.sh [--resume]
SLATS=0.4 exec bash "$(dirname "$0")/train_reader_windows_mix.sh" "$@"
