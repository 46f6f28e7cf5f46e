"""Prediction: images -> detections -> pred.json (COCO results) + pred.csv (whole numbers) + gallery."""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from digitdet import io, metrics, numbers
from digitdet.checkpoint import model_from_checkpoint
from digitdet.config import Config
from digitdet.data.coco import DigitDataset, read_image
from digitdet.data.transforms import build_transforms
from digitdet.engine import run_inference
from digitdet.loaders import inference_loader
from digitdet.viz import Panel, save_gallery

Runner = Callable[[DataLoader], list[dict]]  # loader -> detections (see engine.run_inference)


def pred_csv_text(read: dict[int, str]) -> str:
    """`image_id,pred_label` rows sorted by image id; '-1' where no digit was read."""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", "pred_label"])
    for image_id in sorted(read):
        writer.writerow([image_id, read[image_id]])
    return buf.getvalue()


def write_predictions(out_dir: str | Path, detections: list[dict], cfg: Config) -> dict[int, str]:
    """Write OUT/pred.json and OUT/pred.csv (each atomically); returns the numbers read."""
    out = Path(out_dir)
    results = metrics.coco_results(detections, score_thresh=cfg.predict.score_thresh)
    read = numbers.read_all(detections, cfg.predict.read_thresh, cfg.predict.dedup_iou)
    io.write_json(out / "pred.json", results, indent=None)
    io.write_text(out / "pred.csv", pred_csv_text(read))
    return read


def gallery(dataset: DigitDataset, detections: list[dict], read: dict[int, str], path: str | Path,
            n: int, cfg: Config, truth: dict | None = None, title: str | None = None) -> None:
    """Draw the first `n` images (by id) with boxes above the reading threshold and the read number."""
    by_id = {d["image_id"]: d for d in detections}
    panels = []
    for image_id, file in sorted(zip(dataset.image_ids, dataset.file_paths))[:n]:
        det = by_id.get(image_id)
        if det is None:
            continue
        keep = det["scores"] >= cfg.predict.read_thresh
        caption = f"#{image_id}: {read.get(image_id, '-1')}"
        truth_boxes = None
        if truth is not None:
            caption += f" (gt {truth['numbers'].get(image_id, '-1')})"
            truth_boxes = truth["boxes"].get(image_id)
        panels.append(Panel(read_image(file), det["boxes"][keep], det["labels"][keep], caption, truth_boxes))
    save_gallery(panels, path, title=title)


def predict_folder(
    checkpoint: str | Path,
    images: str | Path,
    out_dir: str | Path,
    *,
    ann_file: str | Path | None = None,
    overrides: tuple[str, ...] = (),
    visualize: int = 0,
    runner: Runner | None = None,
    progress: bool = True,
) -> dict:
    """Predict every image in `images`; image ids from `ann_file` when given, else integer file stems."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, model, _ = model_from_checkpoint(checkpoint, overrides, device=device)
    dataset = DigitDataset(images, ann_file, transforms=build_transforms(cfg.data, train=False))
    loader = inference_loader(dataset, cfg.predict.batch_size, cfg.data.workers)
    if runner is None:
        def runner(ld: DataLoader) -> list[dict]:
            return run_inference(model, ld, device, progress=progress, amp=cfg.train.amp)

    detections = runner(loader)
    read = write_predictions(out_dir, detections, cfg)
    if visualize:
        gallery(dataset, detections, read, Path(out_dir) / "gallery.png", visualize, cfg)
    n_boxes = sum(int((d["scores"] >= cfg.predict.score_thresh).sum()) for d in detections)
    no_digit = sum(v == numbers.NO_NUMBER for v in read.values())
    return {"images": len(detections), "boxes": n_boxes, "no_digit": no_digit,
            "read_thresh": cfg.predict.read_thresh, "score_thresh": cfg.predict.score_thresh}

