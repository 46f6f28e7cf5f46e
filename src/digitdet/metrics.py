"""COCO box metrics (faster-coco-eval, the pycocotools algorithm) and whole-number accuracy."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np

# The 12 standard stats, in pycocotools' order, with their printed descriptions.
STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
_LAYOUT = [
    ("Average Precision", "0.50:0.95", "all", 100),
    ("Average Precision", "0.50", "all", 100),
    ("Average Precision", "0.75", "all", 100),
    ("Average Precision", "0.50:0.95", "small", 100),
    ("Average Precision", "0.50:0.95", "medium", 100),
    ("Average Precision", "0.50:0.95", "large", 100),
    ("Average Recall", "0.50:0.95", "all", 1),
    ("Average Recall", "0.50:0.95", "all", 10),
    ("Average Recall", "0.50:0.95", "all", 100),
    ("Average Recall", "0.50:0.95", "small", 100),
    ("Average Recall", "0.50:0.95", "medium", 100),
    ("Average Recall", "0.50:0.95", "large", 100),
]


def coco_results(detections: list[dict], score_thresh: float = 0.0) -> list[dict]:
    """Detections [{'image_id', 'boxes' xyxy, 'scores', 'labels'}] -> COCO result records (bbox xywh)."""
    out = []
    for det in detections:
        boxes = np.asarray(det["boxes"], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(det["scores"], dtype=np.float64).reshape(-1)
        labels = np.asarray(det["labels"]).reshape(-1)
        for (x0, y0, x1, y1), score, label in zip(boxes, scores, labels):
            if score < score_thresh:
                continue
            out.append(
                {
                    "image_id": int(det["image_id"]),
                    "bbox": [round(float(x0), 2), round(float(y0), 2),
                             round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                    "score": round(float(score), 5),
                    "category_id": int(label),
                }
            )
    return out


def coco_stats(gt: dict, results: list[dict]) -> list[float]:
    """The 12 COCO bbox stats of `results` against the ground-truth json `gt` (-1 where undefined)."""
    from faster_coco_eval import COCO, COCOeval_faster

    if not gt.get("annotations"):
        return [-1.0] * 12
    if not results:
        return [0.0] * 12
    gt = dict(gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt)
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = [img["id"] for img in gt["images"]]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats[:12]]


def format_stats(stats: list[float]) -> str:
    """The 12 stats in pycocotools' printed layout."""
    lines = []
    for (kind, iou, area, dets), value in zip(_LAYOUT, stats):
        short = "(AP)" if kind.endswith("Precision") else "(AR)"
        lines.append(
            f" {kind:<18} {short} @[ IoU={iou:<9} | area={area:>6s} | maxDets={dets:>3d} ] = {value:0.3f}"
        )
    return "\n".join(lines)


def stats_dict(stats: list[float]) -> dict[str, float]:
    return {name: (None if math.isnan(v) else round(v, 6)) for name, v in zip(STAT_NAMES, stats)}
