"""The bundled reader is a pair of models, each reading where it reads better (weights/MODEL.md measures it).

The whole-photo reader (since 2026-12-05 reader v1 fine-tuned with windows, slats and letters as
lookalikes; reader v1 before) reads every photo first. When the best number it finds, or the tallest
digit it detects (read or not, at a score of at least 0.3), is at least `close_frac` of the photo's height,
the photo is a close-up (a tight crop, a plaque, a relief or cut number) and the close-up reader (reader v2:
more relief and cut digits, but it takes window frames and letters for digits in whole photos) reads it
again; its detections are the answer, whatever it reads. The unread tall digit counts because v1 often reads nothing
at all in a cut or steep close-up that v2 reads (synthetic validation, seed 11: cut 98 -> 105 of 120, no
mode worse; docs/reading.md). `close_frac` (predict.close_frac) was chosen on a synthetic validation split
(benchmarks/route_readers.py), never on the real photo sets.

Each reader has its own tuned reading threshold (the packed file's read_thresh). Callers read every
detection at one threshold, the whole-photo reader's (predict.read_thresh), so the close-up reader's scores
and presences are mapped onto that scale by a monotone piecewise-linear map that takes its threshold to
the whole-photo reader's, 0 to 0 and 1 to 1: a digit it keeps at its own threshold is kept at the
caller's, the same digits in the same order, and `digitdet read`, `predict`, `serve` and the Ray engine
keep agreeing without knowing there are two readers. The presences (reading.numbers rule 1) are measured
on the close-up reader's own scores before the map: a sum of mapped scores would not be the mapped sum.

With the cascade scan (the default) and predict.close_vote, the close-up reader reads a close-up at each of
its training scales (its model.min_size: 72, 80 and 88 px) and the readings vote (`vote`): one scale drops
or invents a cut digit that the other two read right. Chosen on synthetic validation (val21: 1,385 -> 1,397
of 1,500 close-up photos, cut 259 -> 266) and confirmed on a fresh split (weights/MODEL.md); a close-up
costs three reads of the close-up reader instead of one.

When the line recogniser is shipped (weights/line-crnn.pt) and predict.line_margin is set, it then reads the
close-up as one line and may dispute the vote's number (reading/dispute.py). With predict.line_context set, it
reads the region around the number instead of the whole close-up, and so also disputes the number the
whole-photo reader reads in a photo that is not a close-up (a photo where it reads none stays unread).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from digitdet.reading.dispute import dispute
from digitdet.reading.numbers import presence_scores, read_candidates


@dataclass(frozen=True)
class RouteSettings:
    close_frac: float = 0.35  # predict.close_frac
    whole_thresh: float = 0.98  # the whole-photo reader's predict.read_thresh (what callers read at)
    close_thresh: float = 0.85  # the close-up reader's own tuned threshold
    dedup_iou: float = 0.3  # predict.dedup_iou
    # The tallest detection counts only from this score up: at any score, number-free texture crops (brick,
    # wood, window frames) re-read 12 of 78 times where v1 read nothing, at 0.3 twice, for one cut photo in
    # 120 on synthetic validation (benchmarks/number_free.py, route_readers.py; never the real sets).
    tall_score: float = 0.3
    line_margin: float | None = 3.0  # predict.line_margin: the line recogniser's dispute (reading/dispute.py)
    line_context: float | None = 1.0  # predict.line_context: what the line reads (dispute.line_region)
    line_veto: float | None = None  # predict.line_veto: the line's no-number head drops a number (dispute)


class ReaderPair(nn.Module):
    """The two models as reading.reader.load_model gives them; reading.scan.for_inference makes the pair a
    RoutedDetector. `close_cfg`: the close-up reader's own config (its read_thresh tuned for it); `line`: the
    line recogniser when shipped (reading/dispute.py), else None."""

    def __init__(self, whole: nn.Module, close: nn.Module, close_cfg, line: nn.Module | None = None) -> None:
        super().__init__()
        self.whole, self.close, self.close_cfg, self.line = whole, close, close_cfg, line

    def close_config(self, cfg):
        """The close-up reader's config scanning as `cfg` does (predict.scan, e.g. `--scan pyramid`)."""
        return replace(self.close_cfg, predict=replace(self.close_cfg.predict, scan=cfg.predict.scan))


def to_whole_scale(x: torch.Tensor, close_thresh: float, whole_thresh: float) -> torch.Tensor:
    """Scores in [0, 1] on the close-up reader's scale -> the whole-photo reader's (float32): close_thresh
    goes to whole_thresh, linear on either side. A score is >= close_thresh exactly when its image is >=
    whole_thresh, compared as reading.numbers compares (a float32 score against the threshold in double),
    to the last bit: rounding never moves a digit across the threshold."""
    if close_thresh == whole_thresh:
        return x.float()
    x64 = x.double()
    low = x64 * (whole_thresh / close_thresh)
    high = whole_thresh + (x64 - close_thresh) * ((1.0 - whole_thresh) / (1.0 - close_thresh))
    kept = x64 >= close_thresh
    y = torch.where(kept, high, low).clamp(0.0, 1.0).float()
    at = torch.tensor(whole_thresh, dtype=torch.float32)
    up = at if float(at) >= whole_thresh else torch.nextafter(at, torch.tensor(2.0))  # least float32 >= it
    below = torch.nextafter(up, torch.tensor(-1.0))  # the greatest float32 under it
    return torch.where(kept, torch.maximum(y, up), torch.minimum(y, below))


class RoutedDetector(nn.Module):
    """forward(images) -> one detection dict per image, like the detectors it wraps (each already a
    reading.scan detector: cascade, pyramid or single), with 'presence' and 'reader' ('whole', 'close', or
    'line' where the line recogniser won the dispute)."""

    def __init__(self, whole: nn.Module, close: nn.Module, settings: RouteSettings = RouteSettings(),
                 close_views: tuple[nn.Module, ...] = (), line: nn.Module | None = None) -> None:
        super().__init__()
        self.whole, self.close, self.settings = whole, close, settings
        self.close_views = nn.ModuleList(close_views)  # the close-up reader at its other scales (the vote)
        self.line = line  # the line recogniser (model/line.py), or None: no dispute

    @torch.inference_mode()
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        # One image at a time: which reader runs is decided per image.
        return [self._detect(image) for image in images]

    def _detect(self, image: torch.Tensor) -> dict:
        s = self.settings
        det = self.whole([image])[0]
        close = close_up_height(det, s) >= s.close_frac * image.shape[-2]
        if close:
            views = [self._close_reading(detector, image) for detector in (self.close, *self.close_views)]
            det = vote(views, s)
        else:
            det = {**det, "reader": "whole"}
        # reading the number's region (line_context), not the whole photo, the line disputes whole photos too
        if self.line is None or s.line_margin is None or not (close or s.line_context is not None):
            return det
        return dispute(self.line, image, det, s.line_margin, s.whole_thresh, s.dedup_iou, s.line_context,
                       read_unread=close, veto=s.line_veto)

    def _close_reading(self, detector: nn.Module, image: torch.Tensor) -> dict:
        """The close-up reader's detections (through `detector`, one of its scales) on the whole-photo
        reader's scale."""
        s = self.settings
        det = detector([image])[0]
        presence = det.get("presence")
        if presence is None:  # a "single" scan measures no presence: measure it on the reader's own scores
            presence = presence_scores(det["boxes"].float(), det["scores"].float(), det["labels"], s.dedup_iou)
        return {**det, "scores": to_whole_scale(det["scores"], s.close_thresh, s.whole_thresh),
                "presence": to_whole_scale(presence, s.close_thresh, s.whole_thresh), "reader": "close"}


def vote(views: list[dict], s: RouteSettings) -> dict:
    """The detections of the view whose number wins: each view's best number (read as callers read, at
    whole_thresh) gets that reading's confidence, summed over the views that read it; the most wins, a tie
    goes to the number read first (the first view's: the reader's own scale), and no number read anywhere
    gives the first view. The winner's detections come from the first view that read it."""
    tally: dict[str, float] = {}
    first: dict[str, int] = {}
    for k, det in enumerate(views):
        best = read_candidates(det["boxes"], det["scores"], det["labels"], s.whole_thresh, s.dedup_iou,
                               det["presence"])[:1]
        if best:
            tally[best[0].number] = tally.get(best[0].number, 0.0) + best[0].confidence
            first.setdefault(best[0].number, k)
    if not tally:
        return views[0]
    winner = max(tally, key=tally.__getitem__)  # the first of equals: in the order read
    return views[first[winner]]


def close_up_height(det: dict, s: RouteSettings) -> float:
    """What the routing compares with close_frac times the image height: the height of the best number the
    whole-photo reader reads in `det` (its detections), or of the tallest box it detects at a score of at least
    tall_score, whichever is more."""
    boxes = det["boxes"]
    sure = boxes[det["scores"] >= s.tall_score]
    tallest = float((sure[:, 3] - sure[:, 1]).max()) if len(sure) else 0.0
    best = read_candidates(boxes, det["scores"], det["labels"], s.whole_thresh, s.dedup_iou,
                           det.get("presence"))[:1]
    return max(tallest, best[0].box[3] - best[0].box[1]) if best else tallest


def routed(pair: ReaderPair, cfg, for_inference) -> RoutedDetector:
    """The pair's detector: each reader inside `for_inference` (reading.scan's) with its own config."""
    close_cfg = pair.close_config(cfg)
    settings = RouteSettings(close_frac=cfg.predict.close_frac, whole_thresh=cfg.predict.read_thresh,
                             close_thresh=close_cfg.predict.read_thresh, dedup_iou=cfg.predict.dedup_iou,
                             line_margin=cfg.predict.line_margin, line_context=cfg.predict.line_context,
                             line_veto=cfg.predict.line_veto)
    views = tuple(for_inference(pair.close, c) for c in vote_configs(close_cfg, cfg))
    return RoutedDetector(for_inference(pair.whole, cfg), for_inference(pair.close, close_cfg), settings, views,
                          pair.line)


def vote_configs(close_cfg, cfg) -> list:
    """The close-up reader's configs at its other training scales (the vote's views, its own scale is the
    last of model.min_size): the short side each, the long side in proportion. An empty list without
    predict.close_vote, or with another scan than the cascade (the pyramid has scales of its own)."""
    m = close_cfg.model
    scales = list(m.min_size) if isinstance(m.min_size, (list, tuple)) else []
    if not cfg.predict.close_vote or cfg.predict.scan != "cascade" or len(scales) < 2:
        return []
    return [replace(close_cfg, model=replace(m, min_size=[short], max_size=round(m.max_size * short / scales[-1])))
            for short in scales[:-1]]
