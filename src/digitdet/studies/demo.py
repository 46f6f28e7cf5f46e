"""`digitdet demo`: synthesize data if missing, train the CPU config, tune, predict and score the test split."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from digitdet import io
from digitdet.config import load_config
from digitdet.data.coco import DigitDataset, load_coco, split_paths
from digitdet.data.loaders import inference_loader
from digitdet.data.transforms import build_transforms
from digitdet.errors import DataError
from digitdet.model.checkpoint import model_from_checkpoint
from digitdet.model.inference import run_inference
from digitdet.reading.predict import gallery, write_predictions
from digitdet.reading.scan import for_inference
from digitdet.training.evaluate import score_detections, truth_numbers
from digitdet.training.fit import fit

# 8,000 training images: the demo's 9,200-image budget sees each once and 15 % of them twice (fresh images
# taught more than repeats: docs/training.md "Learning faster"); valid/test image i is the same whatever the counts.
DEFAULT_COUNTS = {"train": 8000, "valid": 500, "test": 500}


def ensure_dataset(data_dir: Path, counts: dict[str, int], seed: int, progress: bool) -> bool:
    """Use a complete dataset as it is (train, valid and test json: the demo scores the test split);
    generate the embedded synthetic one into a missing or empty folder or over an earlier synthetic one.
    Our own data made with other counts, another seed, another mix of generator modes or by an older
    generator (SYNTH_FORMAT) is made again. Anything else is a user's folder:
    DataError, nothing touched. Returns True when data was generated."""
    import json

    from digitdet.data.synth import (
        SYNTH_FORMAT,
        SYNTH_MARKER,
        check_replaceable,
        generate_dataset,
        is_synthetic,
    )

    if all((data_dir / f"{s}.json").is_file() for s in counts):
        if not is_synthetic(data_dir):
            return False  # a complete dataset of the user's: used as it is
        made = json.loads((data_dir / SYNTH_MARKER).read_text(encoding="utf-8"))
        plain_crops = made.get("modes") in (None, {"crop": 1.0})  # the demo's data: today's crop mode only
        current = made.get("format") == SYNTH_FORMAT
        if current and made.get("seed") == seed and plain_crops and all(made.get("counts", {}).get(k) == n
                                                              for k, n in counts.items()):
            return False
    try:
        check_replaceable(data_dir)
    except DataError:
        missing = [f"{s}.json" for s in counts if not (data_dir / f"{s}.json").is_file()]
        raise DataError(
            f"{data_dir}: the demo needs {', '.join(f'{s}.json' for s in counts)} (missing: {', '.join(missing)}) "
            f"and this folder is not digitdet's synthetic data (no {SYNTH_MARKER}), so it is left untouched; "
            "pass --data with a new folder for the synthetic data, or use `digitdet train` on your own data"
        ) from None
    generate_dataset(data_dir, counts, seed=seed, progress=progress)
    return True


def run_demo(out_dir: str | Path = "runs/demo", *, data_dir: str | Path = "data/synth",
             config: str = "cpu.yaml", overrides: tuple[str, ...] = (), counts: dict | None = None,
             seed: int = 0, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    out, data = Path(out_dir), Path(data_dir)
    counts = counts or DEFAULT_COUNTS
    generated = ensure_dataset(data, counts, seed, progress)
    synth_s = time.perf_counter() - t0
    cfg = load_config([config], overrides)  # a path, or a shipped config's name (config.resolve_config)
    train_summary = fit(cfg, data, out, progress=progress)

    # Test split: predict (pred.json / pred.csv) and score against test.json kept aside.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, model, _ = model_from_checkpoint(out / "best.pt", device=device)
    image_dir, ann_file = split_paths(data, "test")
    dataset = DigitDataset(image_dir, ann_file, transforms=build_transforms(cfg.data, train=False))
    loader = inference_loader(dataset, cfg.predict.batch_size, cfg.data.workers)
    t_inf = time.perf_counter()
    dets = run_inference(for_inference(model, cfg), loader, device, progress=progress, desc="predict test",
                         amp=cfg.train.amp)
    infer_s = time.perf_counter() - t_inf
    read = write_predictions(out, dets, cfg)
    summary = {"data": str(data), "generated_data": generated, "synth_seconds": round(synth_s, 1)}
    if ann_file is not None:
        coco = load_coco(ann_file, check_files=False)
        test = score_detections(dets, coco, read_thresh=cfg.predict.read_thresh,
                                dedup_iou=cfg.predict.dedup_iou)
        truth = {"numbers": truth_numbers(coco), "boxes": coco.boxes}
        summary.update(mAP=test["coco"]["AP"], AP50=test["coco"]["AP50"],
                       number_accuracy=test["number_accuracy"], test=test["coco"])
    else:
        truth = None
    gallery(dataset, dets, read, out / "gallery.png", 36, cfg, truth=truth,
            title="digitdet demo: test predictions (red) and ground truth (green)")
    summary.update(
        epochs=train_summary["epochs"],
        val_mAP=train_summary["val"]["AP"],
        val_number_accuracy=train_summary["val_number_accuracy"],
        read_thresh=train_summary["read_thresh"],
        train_images=train_summary["train_images"],
        train_images_per_s=round(train_summary["train_images_per_s"], 2),
        train_minutes=round(train_summary["train_seconds"] / 60, 2),
        infer_images_per_s=round(len(dets) / max(infer_s, 1e-9), 2),
        minutes=round((time.perf_counter() - t0) / 60, 2),
        device=str(device),
    )
    io.write_json(out / "summary.json", summary)
    return summary


def format_summary(s: dict) -> str:
    rows = [
        ("test mAP@[.5:.95]", s.get("mAP")),
        ("test AP50", s.get("AP50")),
        ("test number accuracy", s.get("number_accuracy")),
        ("val mAP", s.get("val_mAP")),
        ("reading threshold", s.get("read_thresh")),
        ("epochs", s.get("epochs")),
        ("train images seen", s.get("train_images")),
        ("train images/s", s.get("train_images_per_s")),
        ("inference images/s", s.get("infer_images_per_s")),
        ("minutes (whole demo)", s.get("minutes")),
    ]
    lines = ["| metric | value |", "|---|---|"]
    for name, value in rows:
        text = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"| {name} | {text} |")
    return "\n".join(lines)
