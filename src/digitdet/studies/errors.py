"""`digitdet errors`: the numbers a checkpoint reads wrongly, grouped by kind, with one gallery per kind.

Kinds compare the digit strings of truth and prediction ('-1', no digit, is the empty string):
- missed digit: the prediction is shorter and a subsequence of the truth ("117" -> "17", "117" -> "-1");
- extra digit:  the prediction is longer and holds the truth as a subsequence ("117" -> "1117");
- wrong order:  the same digits in another order ("12" -> "21");
- wrong digit:  anything else (a misread digit, or a miss and an extra at once).

Also the helpers the other studies share: a split opened once for repeated inference, timed inference,
and gallery panels showing the boxes a number was read from.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from digitdet import io
from digitdet.config import Config
from digitdet.data.coco import CocoData, read_image
from digitdet.data.loaders import base_dataset, inference_loader, make_dataset
from digitdet.errors import DataError
from digitdet.model.inference import run_inference
from digitdet.reading import numbers
from digitdet.reading.scan import for_inference
from digitdet.training.evaluate import truth_numbers
from digitdet.viz import Panel, save_gallery

CELL = 200  # gallery cell size: captions of ~30 characters fit
KINDS = {"missed": "missed digit", "extra": "extra digit", "wrong_digit": "wrong digit", "wrong_order": "wrong order"}


def digits(number: str) -> str:
    """The digit string of a read number: '-1' (no digit) -> ''."""
    return "" if number == numbers.NO_NUMBER else number


def short(number: str, n: int = 8) -> str:
    """A reading cut to `n` characters for captions (an untrained model reads 30 digits)."""
    return number if len(number) <= n else number[: n - 2] + ".."


def is_subsequence(short: str, long: str) -> bool:
    """True when `short` is `long` with zero or more characters removed ("17" in "117")."""
    it = iter(long)
    return all(ch in it for ch in short)


def classify_error(truth: str, pred: str) -> str | None:
    """None when the number is read right, else one of KINDS (see the module docstring)."""
    t, p = digits(truth), digits(pred)
    if t == p:
        return None
    if len(p) < len(t) and is_subsequence(p, t):
        return "missed"
    if len(p) > len(t) and is_subsequence(t, p):
        return "extra"
    if sorted(p) == sorted(t):
        return "wrong_order"
    return "wrong_digit"


@dataclass
class Split:
    """A split opened once: the dataset through the config's test transforms, its ground truth, files."""

    dataset: Dataset
    coco: CocoData
    files: dict[int, Path]  # image_id -> image file

    def truth(self, image_ids: list[int] | None = None) -> dict[int, str]:
        return truth_numbers(self.coco, image_ids if image_ids is not None else list(self.files))


def open_split(data_dir: str | Path, split: str, cfg: Config, *, limit: int | None = None) -> Split:
    ds = make_dataset(data_dir, split, cfg, train=False, limit=limit)
    base = base_dataset(ds)
    if base.coco is None:
        raise DataError(f"{Path(data_dir) / (split + '.json')}: no annotations to compare with")
    n = len(ds)
    return Split(ds, base.coco, dict(zip(base.image_ids[:n], base.file_paths[:n])))


def timed_inference(model, split: Split, cfg: Config, device: torch.device, *, progress: bool = True,
                    desc: str = "eval") -> tuple[list[dict], float]:
    """(detections as engine.run_inference returns them, wall seconds including image decoding)."""
    loader = inference_loader(split.dataset, cfg.predict.batch_size, cfg.data.workers)
    t0 = time.perf_counter()
    dets = run_inference(for_inference(model, cfg), loader, device, progress=progress, desc=desc, amp=cfg.train.amp)
    return dets, time.perf_counter() - t0


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def reading_boxes(det: Mapping, read_thresh: float, dedup_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """The boxes (N,4 xyxy) and labels (N,) a number is read from, in detection order: after the
    class-agnostic duplicate suppression at `dedup_iou`, presence >= read_thresh (numbers.read_digits)."""
    idx = sorted(i for i, _ in numbers.read_digits(det["boxes"], det["scores"], det["labels"], read_thresh,
                                                   dedup_iou, det.get("presence")))
    boxes = np.asarray(det["boxes"], dtype=np.float32).reshape(-1, 4)
    return boxes[idx].reshape(-1, 4), np.asarray(det["labels"]).reshape(-1)[idx]


def number_panel(split: Split, det: Mapping, caption: str, read_thresh: float, dedup_iou: float) -> Panel:
    """A gallery cell: the image, its true boxes (green), the boxes read (red) and `caption`."""
    image_id = int(det["image_id"])
    boxes, labels = reading_boxes(det, read_thresh, dedup_iou)
    truth_boxes = split.coco.boxes.get(image_id)
    return Panel(read_image(split.files[image_id]), boxes, labels, caption, truth_boxes)


def find_errors(read: Mapping[int, str], truth: Mapping[int, str]) -> list[dict]:
    """[{'image_id', 'truth', 'pred', 'kind'}] for every image read wrongly, by image id."""
    out = []
    for image_id in sorted(truth):
        pred = read.get(image_id, numbers.NO_NUMBER)
        kind = classify_error(truth[image_id], pred)
        if kind is not None:
            out.append({"image_id": image_id, "truth": truth[image_id], "pred": pred, "kind": kind})
    return out


def count_kinds(errors: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for e in errors:
        counts[e["kind"]] += 1
    return counts


def analyse_errors(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    split: str = "valid",
    overrides: tuple[str, ...] = (),
    limit: int | None = None,
    per_kind: int = 36,
    progress: bool = True,
) -> dict:
    """Read every image of `split` with the checkpoint's settings, classify the wrong numbers and write
    OUT/errors.md, errors.json and errors_<kind>.png (truth boxes green, read boxes red)."""
    from digitdet.model.checkpoint import model_from_checkpoint

    out = Path(out_dir) if out_dir is not None else Path(checkpoint).parent / "errors"
    device = default_device()
    cfg, model, _ = model_from_checkpoint(checkpoint, overrides, device=device)
    sp = open_split(data_dir, split, cfg, limit=limit)
    dets, _ = timed_inference(model, sp, cfg, device, progress=progress, desc=f"read {split}")
    p = cfg.predict
    read = numbers.read_all(dets, p.read_thresh, p.dedup_iou)
    truth = sp.truth(list(read))
    errors = find_errors(read, truth)
    counts = count_kinds(errors)
    by_id = {d["image_id"]: d for d in dets}
    galleries = {}
    for kind, label in KINDS.items():
        chosen = [e for e in errors if e["kind"] == kind][:per_kind]
        if not chosen:
            continue
        panels = [number_panel(sp, by_id[e["image_id"]], f"#{e['image_id']} {e['truth']} read {short(e['pred'])}",
                               p.read_thresh, p.dedup_iou) for e in chosen]
        galleries[kind] = f"errors_{kind}.png"
        save_gallery(panels, out / galleries[kind], cell=CELL,
                     title=f"{label}: {counts[kind]} images (truth green, read boxes red)")
    summary = {
        "checkpoint": str(checkpoint), "split": split, "images": len(truth), "wrong": len(errors),
        "number_accuracy": 1 - len(errors) / len(truth) if truth else float("nan"),
        "read_thresh": p.read_thresh, "dedup_iou": p.dedup_iou, "counts": counts, "galleries": galleries,
        "errors": errors,
    }
    io.write_json(out / "errors.json", summary)
    io.write_text(out / "errors.md", errors_markdown(summary))
    return summary


def errors_markdown(summary: dict) -> str:
    n, wrong = summary["images"], summary["wrong"]
    lines = [
        "# Wrongly read numbers",
        "",
        f"Checkpoint `{summary['checkpoint']}` on the {summary['split']} split: {n} images, {wrong} read wrongly "
        f"(number accuracy {summary['number_accuracy']:.3f}; reading threshold {summary['read_thresh']:.2f}, "
        f"duplicate suppression IoU {summary['dedup_iou']:.2f}).",
        "",
        "| kind | images | % of images | % of errors | examples (truth → read) | gallery |",
        "|---|---:|---:|---:|---|---|",
    ]
    for kind, label in KINDS.items():
        count = summary["counts"][kind]
        examples = ", ".join([f"{e['truth']} → {short(e['pred'], 12)}" for e in summary["errors"]
                              if e["kind"] == kind][:5])
        gallery = summary["galleries"].get(kind)
        lines.append(
            f"| {label} | {count} | {100 * count / max(n, 1):.1f} | {100 * count / max(wrong, 1):.1f} | "
            f"{examples or '–'} | {f'[{gallery}]({gallery})' if gallery else '–'} |"
        )
    lines += [
        "",
        "Kinds: *missed* = the reading is shorter and contained in the truth (including no digit read); "
        "*extra* = longer and contains the truth (duplicates, \"117 → 1117\"); *wrong order* = the same "
        "digits in another order; *wrong digit* = everything else.",
        "",
    ]
    for kind, gallery in summary["galleries"].items():
        lines += [f"## {KINDS[kind]}", "", f"![{KINDS[kind]}]({gallery})", ""]
    return "\n".join(lines)
