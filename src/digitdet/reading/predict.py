"""Prediction: images -> detections -> pred.json (COCO results) + pred.csv (whole numbers) + gallery."""

from __future__ import annotations

import csv
import io as _io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from digitdet import io, metrics
from digitdet.config import Config
from digitdet.data.coco import DigitDataset, _as_int, load_coco
from digitdet.data.folder import ImageFolder
from digitdet.data.images import IMAGE_SUFFIXES, assign_ids, list_images, read_image
from digitdet.data.loaders import SkipFailed, inference_loader
from digitdet.data.transforms import build_transforms
from digitdet.errors import DataError
from digitdet.model.inference import run_inference
from digitdet.reading import numbers
from digitdet.reading.reader import load_model
from digitdet.reading.scan import for_inference
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


def write_predictions(out_dir: str | Path, detections: Iterable[dict], cfg: Config,
                      unread: Iterable[int] = ()) -> dict[int, str]:
    """Write OUT/pred.json and OUT/pred.csv (each atomically); returns the numbers read. `unread`: ids of
    images that could not be read, listed in pred.csv as -1 like images without digits.

    `detections` may be any iterable, a generator included: pred.json (the COCO results of
    metrics.coco_results, in the order of `detections`) is written as they come, so a batch run of millions
    of images (reading.ray_engine) never holds them all; the bytes are those of one json.dumps of the list."""
    out = Path(out_dir)
    read: dict[int, str] = {}
    with io.atomic_path(out / "pred.json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("[")
        sep = ""
        for det in detections:
            for record in metrics.coco_results([det], score_thresh=cfg.predict.score_thresh):
                f.write(sep + json.dumps(record))
                sep = ", "
            read.update(numbers.read_all([det], cfg.predict.read_thresh, cfg.predict.dedup_iou))
        f.write("]\n")
    read.update({image_id: numbers.NO_NUMBER for image_id in unread if image_id not in read})
    io.write_text(out / "pred.csv", pred_csv_text(read))
    return read


def list_file_entries(list_file: str | Path) -> list[tuple[int, Path]]:
    """(image_id, path) of the image paths a text file lists, one per line (relative ones from the list
    file's folder; blank lines and '#' comments skipped; a path listed twice counts once), ids from the
    file names as for a folder (data.images.assign_ids). A listed file that is missing or not an image is
    skipped later like a bad file in a folder."""
    list_file = Path(list_file)
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{list_file}: cannot read the list of image paths ({exc})") from exc
    paths = [list_file.parent / line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not paths:
        raise DataError(f"{list_file}: the list of image paths is empty")
    return assign_ids(list(dict.fromkeys(paths)))


def image_entries(images: str | Path, ann_file: str | Path | None = None) -> tuple[Path, list[tuple[int, Path]]]:
    """(folder, [(image_id, path)] sorted by id) of the images to predict: with `ann_file` the images the
    COCO json lists, with its ids (the json must be valid); else `images` is a folder (its image files, ids
    from the names: data.images.list_images) or a text file listing image paths (list_file_entries, the
    folder is the list file's). What both engines of `digitdet predict` read; no file is opened here."""
    images = Path(images)
    if ann_file is not None:
        coco = load_coco(ann_file, images, check_files=False)
        return images, [(_as_int(rec["id"]), images / rec["file_name"]) for rec in coco.images]
    if images.is_file():
        if images.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(f"{images}: an image, not a folder or a list of image paths (digitdet read reads "
                            "single photos)")
        return images.parent, list_file_entries(images)
    return images, list_images(images)


def dataset_kwargs(cfg: Config) -> dict:
    """How an ImageFolder loads for prediction: the model's eval transforms, images over cfg.load_pixels()
    downscaled on load."""
    return {"transforms": build_transforms(cfg.data, train=False), "max_pixels": cfg.load_pixels()}


def model_runner(model: torch.nn.Module, cfg: Config, device: torch.device, progress: bool = True) -> Runner:
    """The runner of `model`: run_inference through predict.scan's whole-photo detection (reading.scan)."""
    detector = for_inference(model, cfg)

    def runner(ld: Iterable) -> list[dict]:
        return run_inference(detector, ld, device, progress=progress, amp=cfg.train.amp)

    return runner


def detect(dataset: ImageFolder, runner: Runner, cfg: Config, workers: int,
           on_skip: Callable[[int, str], None]) -> list[dict]:
    """Detections of the readable images of `dataset`, in size-grouped batches of cfg.predict.batch_size
    (data.loaders.inference_loader: a batch's images run together, so the batches decide the exact
    boxes); an image whose pixels fail to decode goes to `on_skip(image_id, reason)` instead."""
    if not len(dataset):
        return []
    loader = inference_loader(dataset, cfg.predict.batch_size, workers)
    return runner(SkipFailed(loader, lambda t: on_skip(t["image_id"], t["error"])))


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
    dataset = ImageFolder(*image_entries(images, ann_file), **dataset_kwargs(cfg))
    skipped: dict[int, str] = {}

    def skip(image_id: int, reason: str) -> None:
        skipped[image_id] = reason
        if warn is not None:
            warn(reason)

    for record in dataset.records:
        if record.error is not None:
            skip(record.image_id, record.error)
    if runner is None:
        runner = model_runner(model, cfg, device, progress)
    detections = detect(dataset, runner, cfg, cfg.data.workers, skip)
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
