#!/usr/bin/env bash
# The recipe study behind configs/cpu.yaml (README "Learning faster"): each configs/recipe/*.yaml delta
# trained for the same 3,200 images with the same seed, scored on the whole valid split. ~12 min on 2 cores.
# Needs the demo's data (bash scripts/demo.sh, or: digitdet synth data/synth).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/digitdet" -q ablate --base configs/cpu.yaml configs/recipe/*.yaml --data data/synth \
  --out runs/recipe --images 3200 "$@"
