"""Evaluation: detections of a split against its COCO json -> 12 COCO stats + whole-number accuracy."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from digitdet import metrics
from digitdet.config import Config
from digitdet.data.coco import CocoData
from digitdet.data.loaders import base_dataset, inference_loader, make_dataset
from digitdet.errors import DataError
from digitdet.model.inference import run_inference
from digitdet.reading import numbers
from digitdet.reading.scan import for_inference


def truth_numbers(coco: CocoData, image_ids: list[int] | None = None) -> dict[int, str]:
    """{image_id: number shown}, '-1' for images without digits."""
    ids = image_ids if image_ids is not None else [img["id"] for img in coco.images]
    return {i: numbers.ground_truth_number(coco.boxes.get(i, []), coco.labels.get(i, [])) for i in ids}


def subset_gt(coco: CocoData, image_ids: list[int]) -> dict:
    """The ground-truth json restricted to `image_ids` (evaluating a --limit subset)."""
    keep = set(image_ids)
    raw = coco.raw
    return {
        "images": [im for im in raw["images"] if im["id"] in keep],
        "annotations": [a for a in raw["annotations"] if a["image_id"] in keep],
        "categories": raw.get("categories") or [{"id": i, "name": str(i - 1)} for i in range(1, 11)],
    }


def score_detections(
    detections: list[dict], coco: CocoData, *, read_thresh: float, dedup_iou: float
) -> dict:
    """COCO stats (all detections, as pred.json holds them) and number accuracy at `read_thresh`."""
    ids = [d["image_id"] for d in detections]
    stats = metrics.coco_stats(subset_gt(coco, ids), metrics.coco_results(detections))
    truth = truth_numbers(coco, ids)
    read = numbers.read_all(detections, read_thresh, dedup_iou)
    return {
        "coco": metrics.stats_dict(stats),
        "stats": stats,
        "number_accuracy": numbers.number_accuracy(read, truth),
        "read_thresh": read_thresh,
        "images": len(ids),
    }


def evaluate_split(
    model: nn.Module,
    data_dir: str | Path,
    split: str,
    cfg: Config,
    device: torch.device,
    *,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[dict, list[dict], CocoData]:
    """Run the model over a split with annotations; returns (scores, detections, ground truth)."""
    ds = make_dataset(data_dir, split, cfg, train=False, limit=limit)
    coco = base_dataset(ds).coco
    if coco is None:
        raise DataError(f"{Path(data_dir) / (split + '.json')}: no annotations to evaluate against")
    loader = inference_loader(ds, cfg.predict.batch_size, cfg.data.workers)
    model = for_inference(model, cfg)
    dets = run_inference(model, loader, device, progress=progress, desc=f"eval {split}", amp=cfg.train.amp)
    result = score_detections(
        dets, coco, read_thresh=cfg.predict.read_thresh, dedup_iou=cfg.predict.dedup_iou
    )
    return result, dets, coco
