"""scripts/gpu_train_reader.sh (issue 22: reader v3 trained in one command on a lent GPU machine), run as its
smoke run on the CPU: data made, the v3 config trained from the shipped close-up reader, best.pt and last.pt
packed into OUT with the run's log, metrics and config -- what comes back from the device."""

import json
import os
import subprocess
import sys

import torch

from tiny import ROOT


def test_the_device_script_makes_data_trains_and_packs_both_readers(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "NO_WHEELS": "1", "PY": sys.executable, "OUT": str(out),
           "DATA": str(tmp_path / "data"), "RUN": str(tmp_path / "run")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_train_reader.sh"), "train.seed=3"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert "data: 48 images" in log and "fonts," in log
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps and all(0.0 <= s["val"]["AP"] <= 1.0 and s["train"]["images"] > 0 for s in steps)
    for which in ("best", "last"):
        packed = torch.load(out / f"reader-v3-gpu-{which}-resnet18-l3.pt", weights_only=True)
        cfg = packed["config"]
        assert cfg["train"]["init_weights"] == "bundled:reader-v2-resnet18-l3"
        assert cfg["model"]["min_size"] == [72, 80, 88]  # the close-up reader's scales: routing votes at them
        assert cfg["train"]["seed"] == 3  # the script's arguments reach the training
        assert packed["meta"]["data"]["seed"] == 30 and packed["meta"]["data"]["counts"]["train"] == 48
        assert 5.0e6 < sum(v.numel() for v in packed["model"].values()) < 5.5e6
        assert all(v.dtype == torch.float16 for v in packed["model"].values() if v.is_floating_point())
