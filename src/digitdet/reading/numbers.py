"""From one image's detections to the whole number it shows.

Rules, in order:
1. class-agnostic duplicate suppression: two boxes of different digits on one glyph keep only the
   higher-scoring one (per-class NMS cannot see this; it turned the report's "117" into "1117");
   the kept box's score becomes the digit's *presence*: its own score plus those of the other digits
   it suppresses at the same place (IoU >= SAME_PLACE_IOU), at most 1. An unsure glyph ("0" 0.63,
   "8" 0.56, "9" 0.42) is surely a digit, and is read as its likeliest one instead of being dropped.
   A glyph's presence is measured within one view of it: reading.pyramid measures it in each tile of
   each level (presence_scores) before the levels are merged, and passes it on as 'presence';
2. keep digits whose presence is >= the reading threshold (separate from the pred.json threshold);
3. group the digits left into candidate numbers (reading.grouping: alike in height, on one line or in
   one column) and read the best-ranked one, left-to-right, or top-to-bottom for a stacked number;
   a stray digit from texture or small print does not join it;
4. no digit left -> "-1".
Boxes are xyxy; labels are 1..10 meaning digits 0..9.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou, nms

from digitdet.reading.grouping import Candidate, Digit, GroupingRules, group_digits, is_column

NO_NUMBER = "-1"
# Boxes this alike are one glyph read as different digits (neighbouring digits overlap at IoU <= 0.2,
# DATA-NOTES). 0.5 measured best of 0.3/0.5/0.7 on the validation split of three demo-budget models:
# +0.004 to +0.010 number accuracy over dropping the unsure glyph, each with its threshold re-tuned.
SAME_PLACE_IOU = 0.5


def _as_tensor(x, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def suppress_duplicates(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices kept by class-agnostic NMS at `iou`, highest score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    return nms(boxes.float(), scores.float(), iou)


def is_vertical(boxes: torch.Tensor) -> bool:
    """True when the (N, 4) xyxy boxes form a column (reading.grouping.is_column)."""
    return is_column(boxes.tolist())


def read_candidates(
    boxes: Sequence | np.ndarray | torch.Tensor,
    scores: Sequence | np.ndarray | torch.Tensor,
    labels: Sequence | np.ndarray | torch.Tensor,
    score_thresh: float,
    dedup_iou: float,
    presence: Sequence | np.ndarray | torch.Tensor | None = None,
    rules: GroupingRules | None = None,
) -> list[Candidate]:
    """Candidate numbers from the digits whose presence is >= `score_thresh`, best first (rules 1-3).
    `presence`: each box's presence when the detector already measured it (reading.pyramid does, in each
    tile before merging levels, which removes the other-class boxes it is summed from); the duplicate
    suppression of rule 1 still runs, on the scores. `rules`: the grouping's, the shipped ones when None
    (benchmarks/grouping_rules.py compares them)."""
    boxes = _as_tensor(boxes, torch.float32).reshape(-1, 4)
    labels = _as_tensor(labels, torch.int64).reshape(-1)
    return group_digits([Digit(tuple(float(v) for v in boxes[i]), int(labels[i]) - 1, p)
                         for i, p in read_digits(boxes, scores, labels, score_thresh, dedup_iou, presence)],
                        rules or GroupingRules())


def read_digits(boxes, scores, labels, score_thresh: float, dedup_iou: float, presence=None) -> list[tuple[int, float]]:
    """(index, presence) of the boxes read as digits (rules 1-2), highest score first; arguments as
    read_candidates."""
    boxes = _as_tensor(boxes, torch.float32).reshape(-1, 4)
    scores = _as_tensor(scores, torch.float32).reshape(-1)
    labels = _as_tensor(labels, torch.int64).reshape(-1)
    if presence is None:
        kept = digit_presence(boxes, scores, labels, dedup_iou)
    else:
        presence = _as_tensor(presence, torch.float32).reshape(-1)
        kept = [(i, float(presence[i])) for i in suppress_duplicates(boxes, scores, dedup_iou).tolist()]
    return [(i, p) for i, p in kept if p >= score_thresh]


def digit_presence(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                   dedup_iou: float) -> list[tuple[int, float]]:
    """(index, presence) of the boxes kept by duplicate suppression, highest score first (rule 1)."""
    keep = suppress_duplicates(boxes, scores, dedup_iou)
    if len(keep) == 0:
        return []
    same_place = box_iou(boxes[keep].float(), boxes.float()) >= SAME_PLACE_IOU
    taken = torch.zeros(len(boxes), dtype=torch.bool)
    taken[keep] = True  # only suppressed boxes add to a presence, each to one digit
    out = []
    for row, i in enumerate(keep.tolist()):
        others = same_place[row] & ~taken & (labels != labels[i])
        out.append((i, min(1.0, float(scores[i] + scores[others].sum()))))
        taken |= others
    return out


def presence_scores(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, dedup_iou: float) -> torch.Tensor:
    """(N,) each box's presence (rule 1) as read_candidates takes it: a box kept by duplicate suppression
    has its glyph's presence, a suppressed one 0 (its score is in its glyph's)."""
    out = torch.zeros(len(boxes))
    for i, p in digit_presence(boxes, scores, labels, dedup_iou):
        out[i] = p
    return out


def read_number(
    boxes: Sequence | np.ndarray | torch.Tensor,
    scores: Sequence | np.ndarray | torch.Tensor,
    labels: Sequence | np.ndarray | torch.Tensor,
    score_thresh: float,
    dedup_iou: float,
    presence: Sequence | np.ndarray | torch.Tensor | None = None,
    rules: GroupingRules | None = None,
) -> str:
    """The number shown, e.g. "117", or "-1" when no digit's presence is >= `score_thresh` (arguments as
    read_candidates)."""
    candidates = read_candidates(boxes, scores, labels, score_thresh, dedup_iou, presence, rules)
    return candidates[0].number if candidates else NO_NUMBER


def ground_truth_number(boxes, labels) -> str:
    """The number a ground-truth annotation shows: every box counts, in reading order (no grouping)."""
    boxes = _as_tensor(boxes, torch.float32).reshape(-1, 4)
    labels = _as_tensor(labels, torch.int64).reshape(-1)
    if len(boxes) == 0:
        return NO_NUMBER
    axis = 1 if is_vertical(boxes) else 0
    order = torch.argsort((boxes[:, axis] + boxes[:, axis + 2]) / 2, stable=True)
    return "".join(str(int(label) - 1) for label in labels[order])


def number_accuracy(predicted: dict[int, str], truth: dict[int, str]) -> float:
    """Fraction of images whose whole number is read exactly (images without digits count: '-1')."""
    if not truth:
        return float("nan")
    return sum(predicted.get(i, NO_NUMBER) == t for i, t in truth.items()) / len(truth)


def read_all(detections: list[dict], score_thresh: float, dedup_iou: float) -> dict[int, str]:
    """{image_id: number} for detections [{'image_id', 'boxes', 'scores', 'labels'[, 'presence']}, ...]."""
    return {
        d["image_id"]: read_number(d["boxes"], d["scores"], d["labels"], score_thresh, dedup_iou, d.get("presence"))
        for d in detections
    }


# Steps of 0.05, and finer at the top: a presence sums a glyph's classes, so it reaches 0.95-1.0 for a
# letter the model splits between digits (a "B" as 3 .82 + 8 .17), and the best threshold can lie there.
READ_THRESHOLDS = (*np.round(np.arange(0.05, 0.96, 0.05), 2).tolist(), 0.97, 0.98, 0.99)


def tune_read_threshold(
    detections: list[dict],
    truth: dict[int, str],
    dedup_iou: float,
    candidates: Sequence[float] = READ_THRESHOLDS,
) -> tuple[float, float]:
    """The reading threshold with the best number accuracy on `truth` (ties: the lowest threshold)."""
    best = (float(candidates[0]), -1.0)
    for thresh in candidates:
        acc = number_accuracy(read_all(detections, float(thresh), dedup_iou), truth)
        if acc > best[1]:
            best = (float(thresh), acc)
    return best
