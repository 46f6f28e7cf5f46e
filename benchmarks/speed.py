#!/usr/bin/env python
"""Speed benchmark: the course report's detector vs digitdet's configurations, same machine, run and images.

    python benchmarks/speed.py [--checkpoint runs/demo/best.pt] [--data data/synth] [--device auto]

Rows: (a) the report as it ran (ResNet-101 FPN, torchvision's 800/1333 resize, images normalized twice,
bicubic x2 first) = the baseline; (b) configs/seed.yaml as digitdet runs it; (c) digitdet's CPU config
(the checkpoint's weights when one exists) and configs/default.yaml when present; (d) the same weights
through ONNX Runtime, float32 and with int8 box-head weights. Every row runs in a fresh subprocess, so
its peak RSS is its own. Timings cover the model call (run_inference / the ONNX runner) on images
already decoded and transformed; accuracy is measured on the synthetic test split. Progress goes to
stderr; stdout is the markdown report, whose last line is `speedup_vs_report: <ratio>` (images/s at
batch 8 of the CPU config over the baseline's, CPU table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _speed_child import MARK, child_main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
REPORT_OVERRIDES = ["model.min_size=[800]", "model.max_size=1333"]  # torchvision's default resize


# ---------------------------------------------------------------------------------------------- parent
def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_child(spec: dict, what: str, timeout: float = 900) -> dict | None:
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                           text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        log(f"{what}: timed out after {timeout:.0f} s")
        return None
    for line in p.stdout.splitlines():
        if line.startswith(MARK):
            log(f"{what}: {time.perf_counter() - t0:.0f} s")
            return json.loads(line[len(MARK):])
    log(f"{what}: FAILED (exit {p.returncode})\n" + "\n".join(p.stderr.strip().splitlines()[-15:]))
    return None


def ensure_data(data: Path | None, tmp: Path) -> Path:
    """A dataset with test/ + test.json (timing, accuracy) and train/ + train.json (training speed)."""
    if data is not None and (data / "test.json").is_file() and (data / "train.json").is_file():
        return data
    from digitdet.data.synth import generate_dataset

    out = tmp / "synth"
    log(f"no dataset at {data}: generating a small synthetic one in {out}")
    generate_dataset(out, {"train": 32, "valid": 0, "test": 64}, seed=0, progress=False)
    return out


def large_photos(tmp: Path, n: int) -> list[str]:
    """Real photos bundled with scikit-image (no download), saved as PNG: larger than any SVHN crop."""
    from PIL import Image
    from skimage import data as skdata

    paths = []
    for name in ("coffee", "astronaut", "rocket")[:n]:
        path = tmp / f"{name}.png"
        Image.fromarray(getattr(skdata, name)()).convert("RGB").save(path)
        paths.append(str(path))
    return paths


def random_checkpoint(config: Path, path: str) -> None:
    import torch

    from digitdet.config import load_config
    from digitdet.model import build_model

    torch.manual_seed(0)
    cfg = load_config([config])
    torch.save({"config": cfg.to_dict(), "model": build_model(cfg).state_dict()}, path)


def _ort_has_cuda() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def rows_for(args, device: str, ckpt: str) -> list[dict]:
    base = {"device": device, "large": args.large_paths, "images": args.speed_paths}
    gpu = device == "cuda"
    # Every row is timed the same way: one warm-up call at batch 1 and one at batch 8, then the same
    # images at batch 1 and batch 8 for the same number of passes, and the same training steps.
    timing = {"warm": True, "warm_b8": True, "repeats": args.repeats, "train_warmup": 1,
              "train_steps": args.train_steps}
    rows = [
        dict(base, **timing, key="report", label="(a) report: R101-FPN, 800/1333 resize, double norm, x2 bicubic",
             config=str(CONFIGS / "seed.yaml"), overrides=REPORT_OVERRIDES, double_norm=True,
             train_batch=4 if gpu else 2),
        dict(base, **timing, key="seed", label="(b) configs/seed.yaml as digitdet runs it (R101, x2, no resize)",
             config=str(CONFIGS / "seed.yaml"), train_batch=4),
    ]
    trained = not args.random_weights
    fast = dict(base, **timing, train_batch=8, checkpoint=ckpt,
                trained=trained, eval_dir=args.data_dir if trained else None, eval_images=args.eval_images)
    cpu_label = f"(c) digitdet CPU config ({'checkpoint ' + Path(ckpt).name if trained else 'configs/cpu.yaml'})"
    rows.append(dict(fast, key="cpu", label=cpu_label))
    if (CONFIGS / "default.yaml").is_file():
        rows.append(dict(fast, key="default", label="(c) configs/default.yaml (GPU settings)", checkpoint=None,
                         trained=False, eval_dir=None, config=str(CONFIGS / "default.yaml"), train_batch=4))
    if args.onnx_paths and (not gpu or args.onnx_cuda):
        for key, path in args.onnx_paths.items():
            label = "(d) ONNX Runtime, same weights as (c)" + (", int8 box head" if key == "onnx_int8" else "")
            rows.append(dict(fast, key=key, label=label, onnx=path))
    return rows


def measure(rows: list[dict], args) -> list[dict]:
    rows = [r for r in rows if not args.rows or r["key"] in args.rows]
    for row in rows:
        row["res"] = run_child(dict(row, kind="infer"), f"{row['key']} inference ({row['device']})") or {}
        if args.train and not row.get("onnx"):
            tr = run_child(dict(row, kind="train", data=str(args.data_dir)), f"{row['key']} training")
            row["res"].update(tr or {})
    return rows


def fmt(v, spec: str = ".2f", dash: str = "—") -> str:
    return dash if v is None else format(v, spec)


def table(rows: list[dict]) -> list[str]:
    base = next((r["res"].get("img_s_b8") for r in rows if r["key"] == "report"), None)
    lines = ["| configuration | weights | img/s b1 | img/s b8 | ms/img p50 | ms/img p95 | large photo ms | "
             "peak RSS MB | train img/s (batch) | mAP | AP50 | number acc | speed-up vs (a) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        x = r["res"]
        if not x.get("img_s_b8"):
            lines.append(f"| {r['label']} | failed | " + " | ".join(["—"] * 11) + " |")
            continue
        weights = "trained" if r.get("trained") else "random"
        train = f"{x['train_img_s']:.2f} ({x['train_batch']})" if x.get("train_img_s") else "—"
        rss = f"{x['rss_mb']:.0f}" + (f" (GPU {x['gpu_mb']:.0f})" if x.get("gpu_mb") else "")
        ratio = f"**{x['img_s_b8'] / base:.1f}×**" if base else "—"
        lines.append(
            f"| {r['label']} | {weights} | {x['img_s_b1']:.2f} | {x['img_s_b8']:.2f} | {x['p50_ms']:.0f} | "
            f"{x['p95_ms']:.0f} | {fmt(x.get('large_ms'), '.0f')} | {rss} | {train} | "
            f"{fmt(x.get('mAP'), '.3f')} | {fmt(x.get('AP50'), '.3f')} | {fmt(x.get('number_acc'), '.3f')} | "
            f"{ratio} |")
    return lines


def machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"GPU {torch.cuda.get_device_name(0)} (AMP on), torch {torch.__version__}"
    from digitdet.model.onnx_runtime import cpu_cores, cpu_name

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"CPU {cpu_name()}, {cpu_cores()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"load average {load} at start")


def notes(rows: list[dict], args, ckpt: str) -> list[str]:
    by = {r["key"]: r["res"] for r in rows}
    out = [
        f"- Timing images: {len(args.speed_paths)} synthetic SVHN-sized test images, the same for every row "
        f"(batch 8 = size-grouped batches of them; batch 1 = each alone), {args.repeats} passes each, after "
        "one warm-up call at batch 1 and one at batch 8 for every row; large photo = "
        f"{', '.join(Path(p).stem for p in args.large_paths)} from scikit-image (400x600 and up), batch 1. "
        "Times cover the model call on decoded images.",
        "- Peak RSS: the row's own process (python + torch + model + activations). Training: images/s over "
        f"{args.train_steps} optimizer step(s) after one warm-up step, every row (batch in brackets).",
        "- (a) and (b) have random weights (no report weights exist and the baseline cannot be trained here in "
        "budget: one training step at 800 px takes tens of seconds on CPU), so their accuracy is '—'. The "
        "report's 800 px pipeline is not expected to be more accurate on these crops (it mostly upsamples "
        "60 px images), but that is not measured here.",
    ]
    if args.random_weights:
        out.append("- No trained checkpoint: (c) and (d) share random weights. Run `digitdet demo` first (it "
                   "writes runs/demo/best.pt) and re-run this script to fill the accuracy columns.")
    else:
        n = by.get("cpu", {}).get("eval_images")
        out.append(f"- Accuracy: COCO mAP / AP50 and whole-number accuracy on the first {n} images of "
                   f"{args.data_dir}/test with the weights of {ckpt}.")
    if rows and rows[0]["device"] == "cuda" and not args.onnx_cuda:
        out.append("- No ONNX rows on the GPU: this onnxruntime build has no CUDA execution provider.")
    cpu, onnx = by.get("cpu", {}), by.get("onnx", {})
    if cpu.get("img_s_b8") and onnx.get("img_s_b8"):
        out.append(f"- ONNX Runtime vs eager PyTorch, same weights: {onnx['img_s_b1'] / cpu['img_s_b1']:.2f}x "
                   f"at batch 1, {onnx['img_s_b8'] / cpu['img_s_b8']:.2f}x at batch 8 (the ONNX graph takes "
                   "one image at a time).")
    for key in ("onnx", "onnx_int8"):
        if args.export_info.get(key):
            e = args.export_info[key]
            out.append(f"- Export {key}: vs eager on {e['verified_images']} verification images: same number "
                       f"read on {e['same_numbers']}, max box diff {e['max_box_diff_px']:.2g} px, max score diff "
                       f"{e['max_score_diff']:.2g}.")
    from digitdet.model.onnx_runtime import cpu_cores

    if args.load_start > 0.5 * cpu_cores():  # measured before this script started any work
        out.append(f"- WARNING: the machine was busy before this run (1-minute load average {args.load_start:.1f} "
                   f"on {cpu_cores()} cores): timings are unreliable; re-run on a quiet machine.")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="trained CPU-config weights (default runs/demo/best.pt if it exists)")
    p.add_argument("--data", default="data/synth", help="dataset with test/ test.json train/ train.json")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the CPU table, and the GPU table too when CUDA is available")
    p.add_argument("--images", type=int, default=8, help="timing images (SVHN-sized test images)")
    p.add_argument("--large", type=int, default=1, help="large photos timed at batch 1 (at most 3)")
    p.add_argument("--repeats", type=int, default=2, help="timing passes over the images (every row)")
    p.add_argument("--train-steps", type=int, default=2, help="timed training steps after one warm-up (every row)")
    p.add_argument("--eval-images", type=int, default=200, help="test images scored for accuracy")
    p.add_argument("--rows", nargs="+", metavar="KEY",
                   help="only these rows: report seed cpu default onnx onnx_int8 (default: all)")
    p.add_argument("--no-train", dest="train", action="store_false", help="skip training throughput")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime rows")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    import torch

    t0 = time.perf_counter()
    args.load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    default_ckpt = ROOT / "runs" / "demo" / "best.pt"
    ckpt = args.checkpoint or (str(default_ckpt) if default_ckpt.is_file() else None)
    with tempfile.TemporaryDirectory(prefix="digitdet-speed-") as tmp_name:
        tmp = Path(tmp_name)
        data = Path(args.data) if Path(args.data).is_absolute() else ROOT / args.data
        args.data_dir = str(ensure_data(data, tmp))
        tests = sorted((Path(args.data_dir) / "test").glob("*.png"), key=lambda f: (len(f.stem), f.stem))
        args.speed_paths = [str(f) for f in tests[: args.images]]
        args.large_paths = large_photos(tmp, args.large)
        args.random_weights = ckpt is None
        if ckpt is None:  # the CPU and ONNX rows then share these random weights: timing only
            ckpt = str(tmp / "random_cpu.pt")
            random_checkpoint(CONFIGS / "cpu.yaml", ckpt)
        args.onnx_paths, args.export_info = {}, {}
        for key, quant in (("onnx", False), ("onnx_int8", True)) if args.onnx else ():
            out = str(tmp / f"{key}.onnx")
            info = run_child({"kind": "export", "checkpoint": ckpt, "out": out, "quantize": quant}, f"export {key}")
            if info:
                args.onnx_paths[key], args.export_info[key] = out, info
        args.onnx_cuda = _ort_has_cuda()
        devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
            ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
        tables = {}
        for device in devices:
            head = machine(device)
            tables[device] = (head, measure(rows_for(args, device, ckpt), args))
    print("# digitdet speed benchmark\n")
    for device, (head, rows) in tables.items():
        print(f"## {device.upper()}: {head}\n")
        print("\n".join(table(rows)) + "\n")
        print("\n".join(notes(rows, args, ckpt)) + "\n")
    print(f"Total benchmark time {time.perf_counter() - t0:.0f} s.\n")
    cpu_rows = {r["key"]: r["res"] for r in tables.get("cpu", ("", []))[1]}
    base, fast = cpu_rows.get("report", {}).get("img_s_b8"), cpu_rows.get("cpu", {}).get("img_s_b8")
    print(f"speedup_vs_report: {fast / base:.2f}" if base and fast else "speedup_vs_report: nan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
