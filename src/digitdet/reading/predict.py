"""Prediction: images -> detections -> pred.json (COCO results) + pred.csv (whole numbers) + gallery."""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from digitdet import io, metrics
from digitdet.config import Config
from digitdet.data.coco import DigitDataset
from digitdet.data.folder import ImageFolder
from digitdet.data.images import read_image
from digitdet.data.loaders import SkipFailed, inference_loader
from digitdet.data.transforms import build_transforms
from digitdet.model.inference import run_inference
from digitdet.reading import numbers
from digitdet.reading.pyramid import for_inference
from digitdet.reading.reader import load_model
from digitdet.viz import Panel, save_gallery

Runner = Callable[[Iterable], list[dict]]  # batches of (images, targets) -> detections (engine.run_inference)


def pred_csv_text(read: dict[int, str]) -> str:
    """`image_id,pred_label` rows sorted by image id; '-1' where no digit was read."""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_id", "pred_label"])
    for image_id in sorted(read):
        writer.writerow([image_id, read[image_id]])
    return buf.getvalue()


def write_predictions(out_dir: str | Path, detections: list[dict], cfg: Config,
                      unread: Iterable[int] = ()) -> dict[int, str]:
    """Write OUT/pred.json and OUT/pred.csv (each atomically); returns the numbers read. `unread`: ids of
    images that could not be read, listed in pred.csv as -1 like images without digits."""
    out = Path(out_dir)
    results = metrics.coco_results(detections, score_thresh=cfg.predict.score_thresh)
    read = numbers.read_all(detections, cfg.predict.read_thresh, cfg.predict.dedup_iou)
    read.update({image_id: numbers.NO_NUMBER for image_id in unread if image_id not in read})
    io.write_json(out / "pred.json", results, indent=None)
    io.write_text(out / "pred.csv", pred_csv_text(read))
    return read


def gallery(dataset: DigitDataset | ImageFolder, detections: list[dict], read: dict[int, str], path: str | Path,
            n: int, cfg: Config, truth: dict | None = None, title: str | None = None) -> None:
    """Draw the first `n` images (by id) with boxes above the reading threshold and the read number.
    Images over predict.max_pixels are drawn downscaled (boxes scaled with them)."""
    by_id = {d["image_id"]: d for d in detections}
    panels = []
    for image_id, file, (w, h) in sorted(zip(dataset.image_ids, dataset.file_paths, dataset.sizes))[:n]:
        det = by_id.get(image_id)
        if det is None:
            continue
        image = read_image(file, cfg.load_pixels())
        scale = np.array([image.width / w, image.height / h] * 2, dtype=np.float32)
        keep = det["scores"] >= cfg.predict.read_thresh
        caption = f"#{image_id}: {read.get(image_id, '-1')}"
        truth_boxes = None
        if truth is not None:
            caption += f" (gt {truth['numbers'].get(image_id, '-1')})"
            truth_boxes = truth["boxes"].get(image_id)
            truth_boxes = None if truth_boxes is None else np.asarray(truth_boxes) * scale
        panels.append(Panel(image, det["boxes"][keep] * scale, det["labels"][keep], caption, truth_boxes))
    save_gallery(panels, path, title=title)


def predict_folder(
    checkpoint: str | Path | None,
    images: str | Path,
    out_dir: str | Path,
    *,
    ann_file: str | Path | None = None,
    overrides: tuple[str, ...] = (),
    visualize: int = 0,
    runner: Runner | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> dict:
    """Predict every image file in `images`: pred.json (boxes in original pixels), pred.csv, and without
    `ann_file` OUT/images.json (the COCO `images` list: which id each file got, see data/images.py).

    Image ids come from `ann_file` when given (the json must be valid), else from the file names. A file
    that cannot be read is skipped, never raised: `warn` gets one line naming it and the reason, and its
    pred.csv row is -1. Images over predict.max_pixels are downscaled on load. The summary's 'read' counts
    the images predicted and 'skipped' lists the reasons of the others.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, model = load_model(checkpoint, overrides, device=device)  # no checkpoint: the bundled reader
    kwargs = {"transforms": build_transforms(cfg.data, train=False), "max_pixels": cfg.load_pixels()}
    if ann_file is None:
        dataset = ImageFolder.from_folder(images, **kwargs)
    else:
        dataset = ImageFolder.from_coco(images, ann_file, **kwargs)
    skipped: dict[int, str] = {}

    def skip(image_id: int, reason: str) -> None:
        skipped[image_id] = reason
        if warn is not None:
            warn(reason)

    for record in dataset.records:
        if record.error is not None:
            skip(record.image_id, record.error)
    if runner is None:
        def runner(ld: Iterable) -> list[dict]:
            return run_inference(for_inference(model, cfg), ld, device, progress=progress, amp=cfg.train.amp)

    detections: list[dict] = []
    if len(dataset):
        loader = inference_loader(dataset, cfg.predict.batch_size, cfg.data.workers)
        detections = runner(SkipFailed(loader, lambda t: skip(t["image_id"], t["error"])))
    read = write_predictions(out_dir, detections, cfg, unread=skipped)
    if ann_file is None:
        io.write_json(Path(out_dir) / "images.json", dataset.images_json(set(skipped)))
    if visualize:
        gallery(dataset, detections, read, Path(out_dir) / "gallery.png", visualize, cfg)
    n_boxes = sum(int((d["scores"] >= cfg.predict.score_thresh).sum()) for d in detections)
    no_digit = sum(read[d["image_id"]] == numbers.NO_NUMBER for d in detections)
    return {"images": len(dataset.records), "read": len(detections), "skipped": [skipped[i] for i in sorted(skipped)],
            "boxes": n_boxes, "no_digit": no_digit,
            "read_thresh": cfg.predict.read_thresh, "score_thresh": cfg.predict.score_thresh}
