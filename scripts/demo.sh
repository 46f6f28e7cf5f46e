#!/usr/bin/env bash
# The main job: synthesize the embedded dataset (if missing), train, evaluate, predict. Args go to `digitdet demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/digitdet" demo "$@"
