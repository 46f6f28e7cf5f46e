"""Whole-photo detection: an image pyramid, tiled where large, at the scale the detector was trained on.

The detector learned digits of roughly 20-80 px in an image whose short side is ~88 px (cpu.yaml's
min_size). A tight crop shows digits at that scale once shrunk to 88 px; a phone photo of a wall shows a
50-px number in a 720-px image, which the same shrink turns into 6 px: nothing is found. So the image is
run at several scales:

- level 0 is the model's own test-time scale (short side `base_short`, long side at most `base_max`);
- each further level is `step` times larger, until a digit of `min_digit` original pixels reaches
  `band[0]` pixels, or the level would exceed `max_level_pixels` (the memory and time budget: a
  4000x3000 photo is never run larger than that);
- a level larger than `tile` pixels on a side runs as overlapping tiles (`overlap` > the largest trusted
  digit, so every digit lies whole inside some tile); a box touching an inner tile edge is dropped, its
  whole copy comes from the neighbouring tile;
- each level keeps only the digits of the heights it is trusted for (`band`, in level pixels; level 0
  keeps everything taller, the finest level everything shorter), then all levels map back to input
  pixels and one class-agnostic NMS merges them;
- each box carries its `presence` (numbers.presence_scores), measured in its own tile before the merge:
  a glyph the model splits between classes (0 .63 / 8 .56 / 9 .42) is surely a digit only while its
  other-class boxes are there to be summed, and the merge removes them. Measured per view, not summed
  across levels: a class-per-class merge that kept them for reading added stray digits (bundled reader,
  validation 0.960 -> 0.950).

Boxes are xyxy pixels of the input tensor; labels 1..10 are digits 0..9.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from digitdet.config import PYRAMID_MAX_LEVEL_PIXELS
from digitdet.data.transforms import unit_float
from digitdet.reading.numbers import presence_scores


@dataclass(frozen=True)
class PyramidSettings:
    base_short: int = 88
    base_max: int = 320
    step: float = 2.0
    min_digit: float = 12.0
    band: tuple[float, float] = (20.0, 60.0)
    max_level_pixels: int = PYRAMID_MAX_LEVEL_PIXELS
    tile: int = 512
    overlap: int = 128
    merge_iou: float = 0.5
    batch: int = 8
    dedup_iou: float = 0.5  # predict.dedup_iou: the duplicate suppression of each tile's presence


def level_scales(height: int, width: int, s: PyramidSettings) -> list[float]:
    """Scale factors (level size / input size), coarsest first."""
    scales = [min(s.base_short / min(height, width), s.base_max / max(height, width))]
    finest_needed = s.band[0] / s.min_digit  # a min_digit-px digit reaches band[0] px at this scale
    cap = math.sqrt(s.max_level_pixels / (height * width))
    while scales[-1] < finest_needed:
        nxt = min(scales[-1] * s.step, finest_needed, cap)
        if nxt < scales[-1] * 1.25:  # budget reached: a level this close adds little ...
            if len(scales) > 1 and nxt / scales[-2] <= s.step * 1.3:
                scales[-1] = nxt  # ... so the last level moves up to the budget (bands still overlap)
            break
        scales.append(nxt)
    return scales


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` px covering `length` px with at least `overlap` px shared."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def as_float(image: torch.Tensor) -> torch.Tensor:
    """A uint8 image (what reading.reader.Reader passes: a byte a channel) as float32 in [0, 1] by
    data.transforms.unit_float, ToTensor's own conversion, so a view made from the bytes is the view made
    from the float image, bit for bit; a float image as it is. Converting views, not the photo, is what
    keeps a 4 MP photo at 12 MB while the detector runs, instead of 48."""
    return unit_float(image) if image.dtype == torch.uint8 else image


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """(height, width) of an h x w image scaled by `scale`: what every view of it is resized to."""
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resize(image: torch.Tensor, scale: float) -> torch.Tensor:
    """The image (uint8 or float) scaled by `scale`, float32."""
    h, w = image.shape[-2:]
    size = scaled_size(h, w, scale)
    if size == (h, w):
        return as_float(image)
    return F.interpolate(as_float(image)[None], size=size, mode="bilinear", align_corners=False,
                         antialias=scale < 1)[0]


class PyramidDetector(nn.Module):
    """Wraps a torchvision detector (in eval mode) so that `forward(images)` runs each image as a tiled
    pyramid and returns one merged detection dict per image, like the detector itself.

    The level tiles go through the detector's own parts (backbone, RPN, box head) with a resize that keeps
    them as they are; the wrapped model is never changed, so one model may serve several threads and
    training goes on with it between evaluations. A stand-in without those parts (tests) is called as is."""

    def __init__(self, model: nn.Module, settings: PyramidSettings = PyramidSettings()) -> None:
        super().__init__()
        from digitdet.model.build import KeepSizeTransform

        t = model.transform
        self.keep_size = KeepSizeTransform(min_size=1, max_size=1 << 16, image_mean=list(t.image_mean),
                                           image_std=list(t.image_std))
        self.model = model
        self.settings = settings

    @torch.inference_mode()
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        # Tiles of several images run together, which is what makes a batch of small crops as fast as the
        # detector alone; a group is closed at `batch` full tiles' pixels, so large photos go one by one
        # and memory stays that of one image's pyramid.
        budget = self.settings.batch * self.settings.tile ** 2
        out: list[dict[str, torch.Tensor]] = []
        group, pixels = [], 0
        for image in images:
            plan = self._plan(image)
            n = sum(t.shape[-2] * t.shape[-1] for t in plan[1])
            if group and pixels + n > budget:
                out += self._detect_group(group)
                group, pixels = [], 0
            group.append((image, plan))
            pixels += n
        if group:
            out += self._detect_group(group)
        return out

    def run(self, tiles: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The detector on tiles at their own size: GeneralizedRCNN.forward's eval path, our resize."""
        m = self.model
        if not hasattr(m, "rpn"):
            return m(tiles)
        batch, _ = self.keep_size(tiles)
        features = m.backbone(batch.tensors)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        proposals, _ = m.rpn(batch, features)
        dets, _ = m.roi_heads(features, proposals, batch.image_sizes)
        return self.keep_size.postprocess(dets, batch.image_sizes, [t.shape[-2:] for t in tiles])

    def _plan(self, image: torch.Tensor) -> tuple[int, list[torch.Tensor], list[tuple]]:
        """(number of levels, tiles, where each tile came from: (level, scale, x0, y0, inner edges))."""
        s = self.settings
        image = as_float(image)  # once, not a level at a time
        h, w = image.shape[-2:]
        scales = level_scales(h, w, s)
        tiles, where = [], []
        for k, scale in enumerate(scales):
            level = _resize(image, scale)
            lh, lw = level.shape[-2:]
            scale = torch.tensor([lw / w, lh / h, lw / w, lh / h])  # per axis, after rounding
            for y0 in tile_origins(lh, s.tile, s.overlap):
                for x0 in tile_origins(lw, s.tile, s.overlap):
                    t = level[:, y0:y0 + s.tile, x0:x0 + s.tile]
                    th, tw = t.shape[-2:]
                    inner = (x0 > 0, y0 > 0, x0 + tw < lw, y0 + th < lh)
                    tiles.append(t)
                    where.append((k, scale, x0, y0, inner))
        return len(scales), tiles, where

    def _detect_group(self, group: list[tuple[torch.Tensor, tuple]]) -> list[dict[str, torch.Tensor]]:
        s = self.settings
        # Batches of tiles of about one size (largest first): a batch is padded to its largest tile, so
        # mixing a level-0 crop with a 4x larger level-1 one would run the crop at 4x its cost.
        every = {(i, j): t for i, (_, (_, tiles, _)) in enumerate(group) for j, t in enumerate(tiles)}
        order = sorted(every, key=lambda ij: -every[ij].shape[-2] * every[ij].shape[-1])  # stable: ties keep order
        dets: dict[tuple[int, int], dict] = {}
        for c in range(0, len(order), s.batch):
            chunk = order[c:c + s.batch]
            dets.update(zip(chunk, self.run([every[ij] for ij in chunk])))
        return [self._merge(image, n_levels, tiles, where, [dets[(i, j)] for j in range(len(tiles))])
                for i, (image, (n_levels, tiles, where)) in enumerate(group)]

    def _merge(self, image, n_levels: int, tiles, where, dets) -> dict[str, torch.Tensor]:
        """One image's tile detections: trusted boxes only, back in input pixels, with their presence in
        their tile, one class-agnostic NMS across levels."""
        h, w = image.shape[-2:]
        boxes, scores, labels, presence = [], [], [], []
        for t, det, (k, scale, x0, y0, inner) in zip(tiles, dets, where):
            keep = self._trusted(det["boxes"], k, n_levels, t.shape, inner)
            b = det["boxes"][keep] + torch.tensor([x0, y0, x0, y0], dtype=det["boxes"].dtype)
            boxes.append(b / scale)
            scores.append(det["scores"][keep])
            labels.append(det["labels"][keep])
            # Within this view, before the merge removes a glyph's other-class boxes that it is summed from.
            presence.append(presence_scores(b.float(), scores[-1].float(), labels[-1], self.settings.dedup_iou))
        if not boxes:
            return {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0),
                    "labels": torch.zeros(0, dtype=torch.int64), "presence": torch.zeros(0)}
        b, sc, lb, pr = torch.cat(boxes), torch.cat(scores), torch.cat(labels), torch.cat(presence)
        b = torch.minimum(b.clamp(min=0), torch.tensor([w, h, w, h], dtype=b.dtype))
        if n_levels > 1 or len(tiles) > 1:
            keep = nms(b, sc, self.settings.merge_iou)
            b, sc, lb, pr = b[keep], sc[keep], lb[keep], pr[keep]
        return {"boxes": b, "scores": sc, "labels": lb, "presence": pr}

    def _trusted(self, boxes: torch.Tensor, level: int, n_levels: int, shape, inner) -> torch.Tensor:
        """Boxes of the heights this level is trusted for, not cut by an inner tile edge."""
        lo, hi = self.settings.band
        hts = boxes[:, 3] - boxes[:, 1]
        keep = torch.ones(len(boxes), dtype=torch.bool)
        if level < n_levels - 1:
            keep &= hts >= lo
        if level > 0:
            keep &= hts <= hi
        th, tw = shape[-2:]
        margin = 2.0
        if inner[0]:
            keep &= boxes[:, 0] > margin
        if inner[1]:
            keep &= boxes[:, 1] > margin
        if inner[2]:
            keep &= boxes[:, 2] < tw - margin
        if inner[3]:
            keep &= boxes[:, 3] < th - margin
        return keep


def settings_for(cfg) -> PyramidSettings:
    """Level 0 at the model's own test scale (the last of model.min_size, and model.max_size)."""
    m = cfg.model
    short = m.min_size[-1] if isinstance(m.min_size, (list, tuple)) else m.min_size
    dedup = cfg.predict.dedup_iou
    if short is None:  # a model that keeps the data pipeline's size: level 0 is the input size
        return PyramidSettings(base_short=1 << 16, base_max=m.max_size, dedup_iou=dedup)
    return PyramidSettings(base_short=int(short), base_max=int(m.max_size), dedup_iou=dedup)

