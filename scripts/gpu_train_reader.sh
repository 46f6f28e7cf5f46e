#!/usr/bin/env bash
# Reader v3 on a lent GPU machine (issue 22, "Train it bigger"), in one device command: fresh data of the
# close-up reader's mix made there on its CPU cores, the shipped close-up reader (v2) trained on it for a
# budget in minutes (configs/reader-v3-gpu.yaml), best.pt and last.pt packed as float16 readers (10.5 MB
# each: under the 16 MB a file that comes back) with the run's metrics, config and log, into $OUT.
#   bash scripts/gpu_wheels.sh                       # here, once: the wheels that python lacks -> .whl/
#   device tool: run, carry [".whl"], timeout_s 570, command "bash scripts/gpu_train_reader.sh"
# Then measure the packed files here in the pair (benchmarks/pair_with.py --close FILE ...) by a rule
# written first, as weights/MODEL.md does for every candidate; last.pt's reading threshold is tuned here
# (scripts/tune_read.py: train.finish tunes best.pt's only). Expected on 16 cores: 30,000 images in about
# 1.5 min (the generator makes ~24 a second a core), MINUTES (5) of steps plus a 300-image validation an
# epoch, 1 min to finish and pack: ~9 of the session's 15 device minutes with the machine's start.
# Nothing is installed (digitdet runs from src/); device figures are the log's, nothing here was run on one.
# A smoke run on any machine (tiny data, 4 steps, the project's .venv unless PY is set):
#   SMOKE=1 NO_WHEELS=1 bash scripts/gpu_train_reader.sh [section.key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/reader/v3-gpu-out}"
DATA="${DATA:-/tmp/reader-v3-data}"
RUN="${RUN:-/tmp/reader-v3-run}"
MODES=crop=0.2,tight=0.15,plaque=0.1,scene=0.1,relief=0.15,cut=0.2,sign=0.1  # reader v2's mix
if [ -z "${SMOKE:-}" ]; then  # extra section.key=value arguments go to the training, last
  PY="${PY:-python3}" IMAGES="${IMAGES:-30000}" VALID=300 WORKERS="${WORKERS:-$(nproc)}"
  EXTRA=("train.max_minutes=${MINUTES:-5}" "$@")
else
  PY="${PY:-.venv/bin/python}" IMAGES=48 VALID=16 WORKERS=2
  EXTRA=(train.max_minutes=null train.max_images=32 train.batch_size=8 data.workers=0 train.val_limit=16 "$@")
fi
if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then  # the device's python lacks these (scripts/gpu_wheels.sh)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20  # a short log
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
"$PY" -c "import faster_coco_eval, digitdet.data.synth.style as s
print('faster-coco-eval', faster_coco_eval.__file__, '|', len(s.font_files()), 'fonts,', len(s.textures()), 'textures')"
# The device's torch/torchvision pair (2.11 / 0.26, pyproject's floor) through tests/test_versions.py, recorded
# and not fatal; its module-import test is left out (digitdet serve's FastAPI is not on the device).
[ -n "${SMOKE:-}" ] || "$PY" -m pytest -q -p no:cacheprovider tests/test_versions.py -k "not every_module_imports" \
  || echo "tests/test_versions.py FAILED on this torch (the run goes on)"
t0=$(date +%s)
if [ ! -f "$DATA/digitdet-synth.json" ]; then
  "$PY" -m digitdet.cli synth "$DATA" --train "$IMAGES" --valid "$VALID" --test 0 --seed 30 --workers "$WORKERS" \
    --modes "$MODES"
fi
t1=$(date +%s)
echo "data: $IMAGES images in $((t1 - t0)) s"
"$PY" -m digitdet.cli train --config reader-v3-gpu --data "$DATA" --out "$RUN" "${EXTRA[@]}"
t2=$(date +%s)
echo "training: $((t2 - t1)) s"
for which in best last; do
  "$PY" scripts/pack_reader.py --checkpoint "$RUN/$which.pt" --data "$DATA" \
    --out "$OUT/reader-v3-gpu-$which-resnet18-l3.pt" --command "bash scripts/gpu_train_reader.sh (device)"
done
cp "$RUN/metrics.jsonl" "$OUT/" 2>/dev/null || true
cp "$RUN"/*.yaml "$OUT/" 2>/dev/null || true
echo "done in $(( $(date +%s) - t0 )) s"; ls -la "$OUT"
