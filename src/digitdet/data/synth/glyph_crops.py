"""Glyph crops for pretraining the trunk: square patches cut from synthetic house numbers at the scale the
detector sees them, labelled with the digit they centre on, or NO_DIGIT.

    make_crops(seed, first, count, short_side=80, size=48) -> (uint8 (N, size, size, 3), int64 (N,))

Image `i` is `render_sample(sample_rng(seed, PRETRAIN_SPLIT, i))`: a split number of its own, so no
pretraining crop comes from the train, valid or test images of `digitdet synth` with any seed. Its crops
are drawn from `numpy.random.default_rng([seed, PRETRAIN_SPLIT, i, 1])` alone: the result does not depend
on the number of worker processes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitdet.data.synth.generate import map_renders, sample_rng
from digitdet.data.synth.scene import render_sample

PRETRAIN_SPLIT = 3  # synth splits 0, 1, 2 are train, valid, test
NO_DIGIT = 10  # class index of "no digit centred here" (digits are 0..9)
CONTEXT = (1.15, 1.6)  # crop side / digit height: the digit with some of its neighbours, as RoIs see it


def _crop(image: Image.Image, cx: float, cy: float, side: float, size: int, fill: tuple) -> np.ndarray:
    half = side / 2
    box = (cx - half, cy - half, cx + half, cy + half)
    patch = image.transform((size, size), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR, fillcolor=fill)
    return np.asarray(patch, dtype=np.uint8)


def _centred_on_a_digit(cx: float, cy: float, side: float, centres: np.ndarray) -> bool:
    """Whether a digit centre lies in the middle of the crop (then it is not a 'no digit' crop)."""
    if not len(centres):
        return False
    near = np.abs(centres - np.array([cx, cy])) < 0.3 * side
    return bool(np.any(near[:, 0] & near[:, 1]))


def crops_of_image(seed: int, index: int, short_side: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The crops of pretraining image `index`: every digit, about half of them shifted off the digit
    (half-cut digits, gaps between digits: NO_DIGIT), and one random background patch."""
    s = render_sample(sample_rng(seed, PRETRAIN_SPLIT, index))
    rng = np.random.default_rng([int(seed), PRETRAIN_SPLIT, int(index), 1])
    scale = short_side / min(s.image.size)
    image = s.image.resize((max(1, round(s.image.width * scale)), max(1, round(s.image.height * scale))),
                           Image.Resampling.BILINEAR)
    fill = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(0))
    boxes = np.asarray(s.boxes, dtype=np.float64).reshape(-1, 4) * scale
    centres = np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2]
    crops, labels = [], []
    for (x0, y0, x1, y1), label, (cx, cy) in zip(boxes, s.labels, centres):
        h, w = y1 - y0, x1 - x0
        side = h * rng.uniform(*CONTEXT)
        jx, jy = rng.uniform(-0.08, 0.08, size=2) * side
        crops.append(_crop(image, cx + jx, cy + jy, side, size, fill))
        labels.append(int(label))
        if rng.random() < 0.5:
            sign = rng.choice([-1.0, 1.0])
            if rng.random() < 0.7:  # sideways: a gap, or two halves of neighbours
                nx, ny = cx + sign * rng.uniform(0.5, 0.8) * max(w, 0.5 * h), cy
            else:  # up or down: a digit cut across
                nx, ny = cx, cy + sign * rng.uniform(0.45, 0.7) * h
            if not _centred_on_a_digit(nx, ny, side, centres):
                crops.append(_crop(image, nx, ny, side, size, fill))
                labels.append(NO_DIGIT)
    heights = boxes[:, 3] - boxes[:, 1]
    side = (float(np.median(heights)) if len(heights) else short_side * 0.5) * rng.uniform(*CONTEXT)
    cx, cy = rng.uniform(0, image.width), rng.uniform(0, image.height)
    if not _centred_on_a_digit(cx, cy, side, centres):
        crops.append(_crop(image, cx, cy, side, size, fill))
        labels.append(NO_DIGIT)
    return np.stack(crops), np.asarray(labels, dtype=np.int64)


def _task(args: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    return crops_of_image(*args)


def make_crops(seed: int, first: int, count: int, *, short_side: int = 80, size: int = 48,
               workers: int = 1, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Crops of images first .. first+count-1, in image order: uint8 (N, size, size, 3), int64 (N,).
    `progress(n)` is called with the number of images done since the last call."""
    tasks = [(seed, i, short_side, size) for i in range(first, first + count)]
    parts = map_renders(_task, tasks, workers, inline_below=32, chunksize=16,
                        on_done=(lambda: progress(1)) if progress else None)
    if not parts:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
