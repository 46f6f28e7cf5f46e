"""Training and inference images/s of config variants, side by side in one run (no accuracy).

    python benchmarks/train_speed.py --data data/synth [--steps 30] [--variants NAME ...]

Each variant is `configs/cpu.yaml` plus a few overrides (STEPS: from the 2026-11-26 configuration to
today's, one change at a time; SINGLE: one change of today's). Every variant trains the same batches of
the same training images (batch 8, decoded beforehand, so data loading and augmentation are not timed)
after 3 warm-up steps, and predicts the same 64 validation images at batch 8, in this process, one
after the other; the table says which host ran it. It measures where the CPU time goes; accuracy at
equal images seen needs `digitdet ablate --images N`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "configs" / "cpu.yaml"
# configs/cpu.yaml as it was on 2026-11-26, as overrides of today's (its box head was 1024 wide: the
# file said 512, but model.representation_size was ignored then).
BEFORE = ["model.returned_layers=[2,3,4]", "model.anchor_sizes=[[24,34],[48,68],[96,136],[192,272]]",
          "model.roi_output_size=7", "model.roi_sampling_ratio=2", "model.representation_size=1024",
          "model.rpn_pre_nms_top_n_train=2000", "model.rpn_post_nms_top_n_train=600",
          "model.box_batch_size_per_image=64", "model.backbone_weights=null", "model.frozen_stages=0"]


def _without(overrides: list[str], *keys: str) -> list[str]:
    return [o for o in overrides if o.split("=")[0] not in keys]


# From the 2026-11-26 configuration to today's, one change at a time (each row adds to the one above).
STEPS = [
    ("2026-11-26 cpu.yaml (1024-wide box head)", BEFORE),
    ("+ box head 512, as the file said", _without(BEFORE, "model.representation_size")),
    ("+ RoIAlign sampling ratio 1", _without(BEFORE, "model.representation_size", "model.roi_sampling_ratio")),
    ("+ 32 sampled RoIs, 600/300 RPN proposals", _without(
        BEFORE, "model.representation_size", "model.roi_sampling_ratio", "model.box_batch_size_per_image",
        "model.rpn_pre_nms_top_n_train", "model.rpn_post_nms_top_n_train")),
    ("+ trunk to layer3 (3 levels)", ["model.roi_output_size=7", "model.backbone_weights=null",
                                      "model.frozen_stages=0"]),
    ("+ RoI 5x5 (2026-11-27 cpu.yaml: trunk trained)", ["model.frozen_stages=0"]),
    ("+ reader's trunk frozen = today's cpu.yaml", []),
]
# Single changes of today's configuration, for what each costs on its own.
SINGLE = {
    "today + FPN 64": ["model.fpn_channels=64"],
    "today + box head 256": ["model.representation_size=256"],
    "today + 64 sampled RoIs": ["model.box_batch_size_per_image=64"],
    "today, only stem and layer1 frozen": ["model.frozen_stages=2"],
    "today + trunk to layer4": ["model.returned_layers=[2,3,4]", "model.backbone_weights=null",
                                "model.frozen_stages=0", "model.anchor_sizes=[[24,34],[48,68],[96,136],[192,272]]"],
}
VARIANTS = {**dict(STEPS), **SINGLE}


def measure(name: str, overrides: list[str], data: Path, steps: int) -> dict:
    import torch
    from torch.utils.data import DataLoader, Subset

    from digitdet.config import load_config
    from digitdet.data.coco import collate_detection
    from digitdet.data.loaders import inference_loader, make_dataset
    from digitdet.model import build_model, count_parameters
    from digitdet.model.inference import run_inference
    from digitdet.training.engine import train_one_epoch
    from digitdet.training.fit import make_optimizer

    cfg = load_config([CPU], overrides)
    torch.set_flush_denormal(True)  # as train.fit does: pretrained weights make subnormal floats
    torch.manual_seed(0)
    model = build_model(cfg)
    ds = make_dataset(data, "train", cfg, train=True)
    loader = DataLoader(Subset(ds, range(8 * (steps + 3))), batch_size=8, shuffle=False,
                        collate_fn=collate_detection, num_workers=0)
    batches = list(islice(loader, steps + 3))
    opt = make_optimizer(model, cfg)
    device = torch.device("cpu")
    train_one_epoch(model, batches[:3], opt, device, epoch=0, start_step=0, progress=False)
    r = train_one_epoch(model, batches[3:], opt, device, epoch=0, start_step=3, progress=False)
    val = make_dataset(data, "valid", cfg, train=False, limit=64)
    run_inference(model, inference_loader(Subset(val, range(8)), 8, 0), device, progress=False)  # warm-up
    t0 = time.perf_counter()
    run_inference(model, inference_loader(val, 8, 0), device, progress=False)
    infer = len(val) / (time.perf_counter() - t0)
    trunk = sum(p.numel() for p in model.backbone.body.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"variant": name, "train": r["images_per_s"], "infer": infer, "params": count_parameters(model),
            "trunk": trunk, "trained": trained, "overrides": " ".join(overrides) or "(none)"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT / "data" / "synth"))
    p.add_argument("--steps", type=int, default=30, help="timed training steps (batch 8) per variant")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), help="default: all")
    args = p.parse_args(argv)
    import torch

    from digitdet.model.onnx_runtime import cpu_cores, cpu_name

    torch.set_num_threads(cpu_cores())
    names = args.variants or list(VARIANTS)
    rows = []
    for name in names:
        print(f"[train_speed] {name}", file=sys.stderr, flush=True)
        rows.append(measure(name, VARIANTS[name], Path(args.data), args.steps))
    base = rows[0]["train"]
    print(f"Measured {time.strftime('%Y-%m-%d')} on {cpu_name()}, {cpu_cores()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at the end; `python benchmarks/train_speed.py --steps {args.steps}`.")
    print()
    print("| variant | train img/s | vs first | infer img/s (b8) | params (M) | trunk params (M) "
          "| trained params (M) | overrides of today's cpu.yaml |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['train']:.1f} | {r['train'] / base:.2f}× | {r['infer']:.1f} | "
              f"{r['params'] / 1e6:.2f} | {r['trunk'] / 1e6:.2f} | {r['trained'] / 1e6:.2f} | `{r['overrides']}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
