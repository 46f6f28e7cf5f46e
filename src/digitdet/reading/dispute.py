"""The line recogniser's dispute: on a close-up, the detector pair's number gives way to the line
recogniser's (model/line.py) when the recogniser finds its own number at least e^margin times likelier than
the pair's, its CTC likelihood summed over every alignment (predict.line_margin; null: never consulted).

Why a dispute and not the recogniser alone: alone it reads cut close-ups better than the pair and relief,
crop and plaque close-ups worse; its path confidence did not say when to trust it, but how strongly it
disagrees with the pair did. Margin 3 was chosen on synthetic validation (val21 + val35) and passed a fresh
split by a rule written first (weights/MODEL.md, 2026-12-06); never tuned on the real photo sets.

What the line reads (predict.line_context, 1.0 since 2026-12-07; null: the whole close-up, as before): the
pair's number box widened by that many digit heights each side and a quarter of one above and below
(line_region), so a plaque's or a relief's digits fill the recogniser's 32 px as a tight crop's do (in a whole
close-up they were a median 14 px high; read from the truth's region, the shipped recogniser read 859 of 900
relief close-ups instead of 757). The margin keeps a digit the pair dropped at either end inside. With a
region, the number the whole-photo reader reads in a photo that is not a close-up is disputed too
(reading/routing.py). Chosen on spent synthetic validation and passed a fresh split by a rule written first
(weights/MODEL.md, 2026-12-07 morning).

The veto (predict.line_veto, 0.9 since 2026-12-07; null: never): the recogniser's no-number head (model/line.py,
fitted by training/blanks.py on its frozen features) or its vetoer (a second recogniser trained with number-free
lines, weighing no number against the likeliest of the pair's number and the line's own reading) may say the
pair's number's region holds no number; that number's detections are then dropped and the next number is
disputed in turn. Where the pair reads (or has left) no number and the line reads one in the whole photo, that
reading is vetoed the same way (before, a number the head vetoed came back as the line's reading of the whole
close-up). On a wall with no number the pair used to read one in about 15 % of crops of synthetic photos (the
peers in none); with the head's veto in 5 %, with the vetoer and the unread veto in about 2 % (weights/MODEL.md,
2026-12-07 late evening and night: each for 2-3 right readings lost of 2,100 on a fresh split).

The answer stays detections, so every caller (`read`, `predict`, `serve`, the Ray engine) reads it as it
reads the pair's: when the pair's best number has as many digits as the line's, its boxes are kept and
relabelled left to right; otherwise each digit gets a box from where the recogniser's CTC path places it
(4 px of the line a time step), as tall as the pair's number, or as the photo when the pair read none. Each
digit's score is the line's number probability mapped onto [whole_thresh, 1]: what the dispute decided is
read at the callers' threshold. A stacked (vertical) number is never disputed: the recogniser reads rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from digitdet.model.line import STRIDE, LineReader, as_batch, decode, line_width, log_likelihood, to_line
from digitdet.reading.grouping import Candidate
from digitdet.reading.numbers import read_candidates


def line_of_tensor(image: torch.Tensor) -> np.ndarray:
    """A C x H x W image tensor (uint8, or float in [0, 1]) -> its line, as to_line makes one from the file."""
    from PIL import Image

    if image.dtype != torch.uint8:
        image = (image.float() * 255).round().clamp(0, 255).to(torch.uint8)
    return to_line(Image.fromarray(image.permute(1, 2, 0).cpu().numpy()))


def pair_best(det: dict, whole_thresh: float, dedup_iou: float) -> Candidate | None:
    """The pair's best number in `det`, as the reading picks it, or None; the dispute leaves a stacked one be."""
    best = read_candidates(det["boxes"], det["scores"], det["labels"], whole_thresh, dedup_iou,
                           det.get("presence"))[:1]
    return best[0] if best else None


def line_region(box, digit_h: float, width: int, height: int, context: float | None,
                above: float = 0.25) -> tuple[int, int, int, int]:
    """The part (x0, y0, x1, y1) of a width x height close-up the line recogniser reads: the pair's number `box`
    widened by `context` digit heights on each side and `above` of one above and below, inside the photo (see
    the module doc); the whole photo when there is no box or `context` is None."""
    if box is None or context is None:
        return 0, 0, width, height
    x0 = min(max(0, math.floor(box[0] - context * digit_h)), width - 1)
    y0 = min(max(0, math.floor(box[1] - above * digit_h)), height - 1)
    x1 = max(min(width, math.ceil(box[2] + context * digit_h)), x0 + 1)
    y1 = max(min(height, math.ceil(box[3] + above * digit_h)), y0 + 1)
    return x0, y0, x1, y1


def digit_height(pair: Candidate) -> float:
    """The median height of the pair's digits: the unit line_region widens by."""
    return float(np.median([d.height for d in pair.digits]))


VETOES = 4  # at most this many numbers vetoed in a photo (a wall's mortar joints read as one "1" after another)


@torch.inference_mode()
def dispute(line_reader: LineReader, image: torch.Tensor, det: dict, margin: float, whole_thresh: float,
            dedup_iou: float, context: float | None = None, read_unread: bool = True,
            veto: float | None = None) -> dict:
    """`det` (the pair's detections of a photo, on the callers' scale: scores, presence) or, when the
    line recogniser wins the dispute, its number as detections (see the module doc), with 'reader' 'line'.
    `context`: the line reads the pair's number with this many digit heights each side (line_region);
    `read_unread`: where the pair read no number, the line reads the whole photo (a close-up), else not.
    `veto` (predict.line_veto; None: never): where the recogniser's no-number head or vetoer (model/line.py
    LineReader.read; a recogniser with neither never vetoes) gives the region of the pair's number a probability
    of holding no number of at least `veto`, that number's detections are dropped and the next number the pair
    reads is disputed in turn (at most VETOES); where the pair reads none, the line's own reading is vetoed the
    same way. The dispute itself is the CTC one, head and vetoer or not."""
    for vetoes in range(VETOES + 1):
        pair = pair_best(det, whole_thresh, dedup_iou)
        if (pair is None and not read_unread) or (pair is not None and pair.vertical):
            return det
        region = line_region(pair.box if pair else None, digit_height(pair) if pair else 0.0, image.shape[-1],
                             image.shape[-2], context)
        line = as_batch(line_of_tensor(image[..., region[1]:region[3], region[0]:region[2]])[None])
        # with a veto, the vetoer weighs no number against the pair's number and the line's own reading
        logits, none = line_reader.read(line, None if veto is None else [[pair.number] if pair else []])
        number, starts = decode(logits)[0]
        said_none = veto is not None and none is not None and float(none[0]) >= veto
        if pair is None or not said_none or vetoes == VETOES:
            break
        det = without(det, pair)
    if number is None or (pair is not None and number == pair.number):
        return det
    if pair is None and said_none:
        return det  # the line's own number where the pair read none (after its vetoes, or none at all)
    mine, theirs = log_likelihood(logits.expand(2, -1, -1), [number, pair.number if pair else None])
    if mine - theirs < margin:
        return det
    boxes = line_boxes(number, starts, pair, region)
    score = whole_thresh + (1.0 - whole_thresh) * math.exp(min(mine, 0.0))
    n = len(number)
    scores = torch.full((n,), score, dtype=torch.float32)
    return {"boxes": boxes, "scores": scores, "presence": scores.clone(), "reader": "line",
            "labels": torch.tensor([int(c) + 1 for c in number], dtype=torch.int64)}


def without(det: dict, pair: Candidate) -> dict:
    """`det` less the detections `pair`'s digits are (the veto), 'reader' 'line'."""
    from torchvision.ops import box_iou

    n = len(det["boxes"])
    theirs = torch.tensor([d.box for d in pair.digits], dtype=det["boxes"].dtype).reshape(-1, 4)
    keep = box_iou(det["boxes"], theirs).amax(1) < 0.99 if n else torch.zeros(0, dtype=torch.bool)
    return {**{k: v[keep] if torch.is_tensor(v) and v.ndim and len(v) == n else v for k, v in det.items()},
            "reader": "line"}


def line_boxes(number: str, starts: list[int], pair: Candidate | None, region: tuple[int, int, int, int]
               ) -> torch.Tensor:
    """xyxy boxes in the photo's pixels for the digits of `number`, left to right, the line having read
    `region` of the photo (line_region; see the module doc)."""
    if pair is not None and len(pair.digits) == len(number):
        return torch.tensor(sorted((d.box for d in pair.digits), key=lambda b: b[0] + b[2]), dtype=torch.float32)
    left, right = region[0], region[2]
    top, bottom = (pair.box[1], pair.box[3]) if pair is not None else (float(region[1]), float(region[3]))
    width = right - left
    used = line_width(width, region[3] - region[1])  # the line's pixels the region fills (the padding: beyond)
    scale = width / used  # line pixels -> photo pixels
    centres = [(t + 0.5) * STRIDE for t in starts]
    pitch = float(np.median(np.diff(centres))) if len(centres) > 1 else float(used)
    pitch = min(pitch, used / len(number))  # no wider than the line shares out
    out = []
    for c in centres:
        x0 = left + min(max(0.0, (c - pitch / 2) * scale), width - 1.0)
        x1 = left + min(float(width), (c + pitch / 2) * scale)
        out.append((x0, top, max(x1, x0 + 1.0), bottom))
    return torch.tensor(out, dtype=torch.float32)
