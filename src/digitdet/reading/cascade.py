"""Whole-photo detection in one pass: find where the number is, then read it there at the model's scale.

The detector learned digits of roughly 20-80 px in an image whose short side is ~88 px (cpu.yaml's
min_size). A phone photo of a wall shows a 50-px number in a 720-px image: at 88 px it is 6 px and lost;
at the photo's own size the model finds it, but reads less surely than at its own scale (tight crops at
their own size read nothing). reading.pyramid answers with many scales and tiles (seconds a photo); this
answers with two steps:

1. the finder views: the image at its own size, shrunk to at most `finder_long` px on the long side (never
   enlarged; a larger photo shrunk from its bytes: finder_views), and halved while it is over twice the size
   of the whole-image reading view (step 2); each trusts only digits up to `finder_max_height` px but the
   coarsest (the model learned 20-80 px digits: taller "digits" at a photo's own size are brick and bark).
   Their digits at `finder_thresh` (well below the reading threshold: it only has to say *where*), merged
   across views, are grouped into candidate numbers (reading.grouping), the best `regions` of them kept, in
   rank order;
2. the reading views: each candidate's box, padded by `pad_y` of its height above and below and `pad_x`
   of its height left and right (a first or last digit the finder missed is inside), is cut from the
   input and resized to the model's own scale (short side `read_short`, long side at most `read_max`);
   the whole image at that scale comes last, for tight crops and numbers the finder did not see.

The views run in that order, one at a time, and the first in which a number is read (reading.numbers at
`read_thresh`) gives the image's detections, with each box's presence measured in that view; the rest are
not run. Each image is detected alone (see forward). Taking the first instead of the
most confident is deliberate: scores are not comparable across scales (a small-print "3" read at 88 px
can be surer than the house number beside it), the finder's rank is (it sees every candidate at once).
No view reads a number -> the detections of the whole image at the model's scale.

Boxes are xyxy pixels of the input tensor; labels 1..10 are digits 0..9.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from digitdet.reading.numbers import presence_scores, read_candidates
from digitdet.reading.pyramid import PyramidDetector, PyramidSettings, _resize, as_float, scaled_size
from digitdet.reading.pyramid import settings_for as pyramid_settings_for


@dataclass(frozen=True)
class CascadeSettings:
    finder_long: int = 1024
    finder_max_height: float = 80.0  # the tallest digit trusted in a finder view but the coarsest
    finder_thresh: float = 0.5
    merge_iou: float = 0.5
    regions: int = 3
    pad_y: float = 0.3
    pad_x: float = 0.8
    read_short: int = 88
    read_max: int = 320
    read_thresh: float = 0.65  # predict.read_thresh
    dedup_iou: float = 0.5  # predict.dedup_iou


def read_scale(height: int, width: int, s: CascadeSettings) -> float:
    """The scale that brings a view to the model's own size (short side read_short, long at most read_max)."""
    return min(s.read_short / min(height, width), s.read_max / max(height, width))


def finder_scales(height: int, width: int, s: CascadeSettings) -> list[float]:
    """The finder views' scales, finest first: the image's own size (long side at most finder_long, never
    enlarged), then halved while the view stays over twice the whole-image reading view's size."""
    scales = [min(1.0, s.finder_long / max(height, width))]
    floor = 2 * read_scale(height, width, s)
    while scales[-1] / 2 >= floor:
        scales.append(scales[-1] / 2)
    return scales


def finder_views(image: torch.Tensor, scales: list[float]) -> list[torch.Tensor]:
    """The finder views (float32) of a uint8 or float image at `scales` (finder_scales).

    Within finder_long (the first scale 1) the image is made float once and each view made from that, as
    the whole pipeline does. A larger photo is shrunk from its bytes (antialiased bilinear on uint8, each
    view rounded to the byte) and only the views are made float: a float copy of the whole photo is never
    made (a 12 MP phone photo: 144 MB). A float image that large is first
    rounded to bytes (ToTensor's floats of a photo's bytes give those bytes back exactly), so the bytes
    and the float image of one photo still give the same views, bit for bit."""
    if scales[0] >= 1:
        full = as_float(image)
        return [_resize(full, k) for k in scales]
    if image.dtype != torch.uint8:
        image = image.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    h, w = image.shape[-2:]
    return [as_float(F.interpolate(image[None], size=scaled_size(h, w, k), mode="bilinear", align_corners=False,
                                   antialias=True)[0]) for k in scales]


def padded_region(box, height: int, width: int, s: CascadeSettings) -> tuple[int, int, int, int]:
    """A candidate's box padded by its height (pad_y above and below, pad_x left and right), in the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    h = max(y1 - y0, 1.0)
    return (max(0, int(x0 - s.pad_x * h)), max(0, int(y0 - s.pad_y * h)),
            min(width, int(x1 + s.pad_x * h + 1)), min(height, int(y1 + s.pad_y * h + 1)))


class CascadeDetector(nn.Module):
    """Wraps a torchvision detector (in eval mode) so that `forward(images)` runs the finder view and the
    reading views of each image (see the module doc) and returns one detection dict per image, like the
    detector itself, with each box's 'presence'. The wrapped model is never changed (one model may serve
    several threads); its views run at their own size through reading.pyramid's runner."""

    def __init__(self, model: nn.Module, settings: CascadeSettings = CascadeSettings()) -> None:
        super().__init__()
        self.views = PyramidDetector(model, PyramidSettings(dedup_iou=settings.dedup_iou))
        self.settings = settings

    @torch.inference_mode()
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        # One image at a time, never batched with another: a batch is padded to its largest view, and the
        # padding changes what the RPN proposes, so an image would read differently in another company
        # (digitdet read, predict and the Ray engine give one image the same answer).
        return [self._detect(image) for image in images]

    def _detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.settings
        h, w = image.shape[-2:]
        levels = finder_views(image, finder_scales(h, w, s))
        det = self._merge_finder(levels, self._run_all(levels), h, w)
        del levels
        candidates = read_candidates(det["boxes"], det["scores"], det["labels"], s.finder_thresh, s.dedup_iou,
                                     det["presence"])
        regions = [padded_region(c.box, h, w, s) for c in candidates[: s.regions]] + [(0, 0, w, h)]
        last = _empty()
        for x0, y0, x1, y1 in regions:  # in rank order, the whole image last; the first that reads wins
            if min(x1 - x0, y1 - y0) < 4:
                continue
            view = _resize(image[:, y0:y1, x0:x1], read_scale(y1 - y0, x1 - x0, s))
            det = self.views.run([view])[0]
            presence = presence_scores(det["boxes"].float(), det["scores"].float(), det["labels"], s.dedup_iou)
            sx, sy = view.shape[-1] / (x1 - x0), view.shape[-2] / (y1 - y0)
            boxes = det["boxes"] / torch.tensor([sx, sy, sx, sy]) + torch.tensor([x0, y0, x0, y0])
            last = {"boxes": boxes, "scores": det["scores"], "labels": det["labels"], "presence": presence}
            if read_candidates(det["boxes"], det["scores"], det["labels"], s.read_thresh, s.dedup_iou, presence):
                break
        return last

    def _merge_finder(self, levels: list[torch.Tensor], dets: list[dict], h: int, w: int) -> dict:
        """The finder views' boxes in input pixels: in each view but the coarsest only digits up to
        finder_max_height (taller ones are past what the model learned: at the photo's own size it sees
        digits in brick and bark; the coarser view has them at a size it knows), presence measured in each
        view, one class-agnostic NMS across views."""
        s = self.settings
        parts = []
        for k, (view, det) in enumerate(zip(levels, dets)):
            keep = torch.ones(len(det["boxes"]), dtype=torch.bool)
            if k < len(levels) - 1:
                keep = det["boxes"][:, 3] - det["boxes"][:, 1] <= s.finder_max_height
            b, sc, lb = det["boxes"][keep], det["scores"][keep], det["labels"][keep]
            pr = presence_scores(b.float(), sc.float(), lb, s.dedup_iou)
            fx, fy = view.shape[-1] / w, view.shape[-2] / h
            parts.append((b / torch.tensor([fx, fy, fx, fy]), sc, lb, pr))
        b, sc, lb, pr = (torch.cat(x) for x in zip(*parts))
        keep = nms(b.float(), sc.float(), s.merge_iou) if len(levels) > 1 else torch.arange(len(b))
        return {"boxes": b[keep], "scores": sc[keep], "labels": lb[keep], "presence": pr[keep]}

    def _run_all(self, views: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The detector on each view at its own size, one view a call (views of one image differ in size:
        batched, the smaller ones would run padded to the largest, at its cost)."""
        return [self.views.run([v])[0] for v in views]

def _empty() -> dict[str, torch.Tensor]:
    return {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64),
            "presence": torch.zeros(0)}


def settings_for(cfg) -> CascadeSettings:
    """Reading views at the model's own test scale: reading.pyramid's level 0 (the last of model.min_size,
    and model.max_size; a model keeping the pipeline's size reads at its finder views' size)."""
    level0 = pyramid_settings_for(cfg)
    return CascadeSettings(read_short=level0.base_short, read_max=level0.base_max,
                           read_thresh=cfg.predict.read_thresh, dedup_iou=cfg.predict.dedup_iou)
