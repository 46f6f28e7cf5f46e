"""Whole-photo detection: pyramid levels, tiles, trusted bands and the merge, with a stand-in detector
that finds bright blobs only at the sizes a trained model knows (20-80 px tall)."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from digitdet.reading.pyramid import PyramidDetector, PyramidSettings, level_scales, tile_origins


def trained_sizes(height: int, width: int) -> float | None:
    return 0.9 if 20 <= height <= 80 else None


class BlobDetector(nn.Module):
    """Boxes of bright connected blobs in each image, label 3 (digit 2), scored by `score(height, width)`
    (None: not found); by default 0.9 for blobs 20-80 px tall, the sizes a trained model knows."""

    def __init__(self, score=trained_sizes):
        super().__init__()
        self.transform = nn.Identity()
        self.transform.image_mean, self.transform.image_std = [0.0] * 3, [1.0] * 3
        self.score = score
        self.seen = []

    def forward(self, images):
        out = []
        for im in images:
            self.seen.append(tuple(im.shape[-2:]))
            lab, _ = ndimage.label(im[0].numpy() > 0.5)
            boxes, scores = [], []
            for y, x in ndimage.find_objects(lab):
                score = self.score(y.stop - y.start, x.stop - x.start)
                if score is not None:
                    boxes.append([x.start, y.start, x.stop, y.stop])
                    scores.append(score)
            b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            out.append({"boxes": b, "scores": torch.tensor(scores).reshape(-1), "labels": torch.full((len(b),), 3)})
        return out


def image_with_blob(h, w, box):
    im = torch.zeros(3, h, w)
    x0, y0, x1, y1 = box
    im[:, y0:y1, x0:x1] = 1.0
    return im


def test_level_scales():
    s = PyramidSettings()
    assert level_scales(60, 120, s) == [pytest.approx(88 / 60)]  # already fine enough: one level
    got = level_scales(225, 225, s)
    assert got == pytest.approx([88 / 225, 176 / 225, 20 / 12])  # the last moved up to the 12-px need
    big = level_scales(3000, 4000, s)
    assert big[0] == pytest.approx(88 / 3000) and all(b / a == pytest.approx(2.0) for a, b in zip(big, big[1:-1]))
    assert big[-1] ** 2 * 3000 * 4000 <= s.max_level_pixels * 1.0001  # the budget caps the finest level
    assert big[-1] == pytest.approx(math.sqrt(4e6 / 12e6))  # the budget, not the 20/12 wish


def test_tile_origins_cover_with_overlap():
    assert tile_origins(400, 512, 128) == [0]
    starts = tile_origins(1000, 512, 128)
    assert starts[0] == 0 and starts[-1] == 1000 - 512
    assert all(b - a <= 512 - 128 for a, b in zip(starts, starts[1:]))


def test_a_small_number_in_a_large_photo_is_found_only_with_the_pyramid():
    box = (700, 500, 708, 514)  # a 14-px-tall digit in a 1200x900 photo
    image = image_with_blob(900, 1200, box)
    plain = BlobDetector()(  # what the model alone sees at its scale: the blob shrinks to ~1 px
        [torch.nn.functional.interpolate(image[None], scale_factor=88 / 900)[0]])[0]
    assert len(plain["boxes"]) == 0
    det = PyramidDetector(BlobDetector())([image])[0]
    assert len(det["boxes"]) == 1
    assert det["boxes"][0].tolist() == pytest.approx(list(box), abs=1.5)
    assert det["labels"].tolist() == [3]


def test_a_tight_crop_is_read_at_level_zero_and_tiles_stay_small():
    box = (10, 3, 50, 57)  # fills 90 % of a 60x100 crop
    model = BlobDetector()
    det = PyramidDetector(model)([image_with_blob(60, 100, box)])[0]
    assert det["boxes"].tolist() == [pytest.approx(list(box), abs=1.0)]
    assert model.seen == [(88, 147)]  # one level: 60 px is already fine enough
    big = BlobDetector()
    PyramidDetector(big)([image_with_blob(900, 1200, (0, 0, 1, 1))])
    assert max(max(s) for s in big.seen) <= PyramidSettings().tile


def test_a_digit_on_a_tile_edge_comes_back_once_and_whole():
    s = PyramidSettings(base_short=88, min_digit=20, tile=256, overlap=96)  # levels 0.0978 .. 1.0
    image = image_with_blob(900, 1200, (245, 400, 270, 440))  # straddles the first tiles' edge at x=256
    det = PyramidDetector(BlobDetector(), s)([image])[0]
    assert len(det["boxes"]) == 1
    assert det["boxes"][0].tolist() == pytest.approx([245, 400, 270, 440], abs=1.5)


def test_the_wrapped_model_keeps_its_own_resize_afterwards():
    model = BlobDetector()
    own = model.transform
    PyramidDetector(model)([torch.zeros(3, 300, 500)])
    assert model.transform is own


def test_empty_image_gives_empty_tensors():
    det = PyramidDetector(BlobDetector())([torch.zeros(3, 300, 500)])[0]
    assert det["boxes"].shape == (0, 4) and det["scores"].shape == (0,) and det["labels"].dtype == torch.int64
    assert np.isfinite(det["boxes"].numpy()).all()


class FixedDetector(nn.Module):
    """The same detections in every tile, as fractions of the tile's width and height."""

    def __init__(self, rel_boxes, scores, labels):
        super().__init__()
        self.transform = nn.Identity()
        self.transform.image_mean, self.transform.image_std = [0.0] * 3, [1.0] * 3
        self.rel = torch.tensor(rel_boxes, dtype=torch.float32)
        self.scores, self.labels = torch.tensor(scores), torch.tensor(labels)

    def forward(self, images):
        return [{"boxes": self.rel * torch.tensor([im.shape[-1], im.shape[-2]] * 2), "scores": self.scores.clone(),
                 "labels": self.labels.clone()} for im in images]


def test_a_glyphs_presence_is_measured_in_its_tile_before_the_merge():
    # test_numbers' "10": a sure 1, then one glyph split between 0 (.63), 8 (.56) and 9 (.42). An 88x117
    # crop runs as two levels (the second drops these boxes as too tall), so the class-agnostic merge runs
    # and removes the 8 and the 9: the 0's presence (1.0) must be measured before, or "10" reads "1".
    from digitdet.reading.numbers import read_all, read_number

    boxes = [[39, 12, 68, 58], [72, 11, 100, 53], [73, 15, 97, 49], [75, 12, 99, 52]]
    scores, labels = [0.93, 0.63, 0.56, 0.42], [2, 1, 9, 10]
    rel = [[x0 / 117, y0 / 88, x1 / 117, y1 / 88] for x0, y0, x1, y1 in boxes]
    assert len(level_scales(88, 117, PyramidSettings())) == 2
    assert read_number(boxes, scores, labels, 0.75, 0.3) == "10"  # the detector alone
    model = FixedDetector(rel, scores, labels)
    det = PyramidDetector(model, PyramidSettings(dedup_iou=0.3))([torch.zeros(3, 88, 117)])[0]
    assert sorted(det["labels"].tolist()) == [1, 2]  # the merge is class-agnostic, as before
    assert sorted(det["presence"].tolist()) == pytest.approx([0.93, 1.0])
    assert read_all([{"image_id": 7, **det}], 0.75, 0.3) == {7: "10"}  # as predict and eval read
    # Summed within one view only: a 0 at one level and an 8 at another are two views of one glyph, not
    # a glyph twice as sure (summing across levels added stray digits on the bundled reader's validation).
    one_each = PyramidDetector(LevelTaggingDetector([[0.3, 0.2, 0.5, 0.5]], [0.5], [0]),
                               PyramidSettings(band=(1.0, 1000.0)))([torch.zeros(3, 88, 117)])[0]
    assert one_each["presence"].tolist() == [0.5]
    # The merge still removes one class's copy of a digit that two levels (or tiles) both found.
    twice = PyramidDetector(FixedDetector([[0.3, 0.2, 0.5, 0.5]], [0.9], [4]),
                            PyramidSettings(band=(1.0, 1000.0)))([torch.zeros(3, 88, 117)])[0]
    assert twice["labels"].tolist() == [4] and twice["presence"].tolist() == pytest.approx([0.9])


class LevelTaggingDetector(FixedDetector):
    """FixedDetector whose labels say which level found the box: 1 at the 88-px level 0, 2 above."""

    def forward(self, images):
        out = super().forward(images)
        for im, det in zip(images, out):
            det["labels"] = torch.full_like(det["labels"], 1 if im.shape[-2] <= 88 else 2)
        return out


def test_each_level_keeps_only_the_digit_heights_it_is_trusted_for():
    # A box 0.9 of the height (79 px at level 0, 132 at level 1) and one 0.1 of it (9 px, 15 px). Level 0
    # (not the finest) trusts >= 20 px: the tall one. Level 1 (the finest, not the first) trusts <= 60 px:
    # the small one. Each box therefore comes back once, from the level that sees it at a known size.
    model = LevelTaggingDetector([[0.05, 0.05, 0.5, 0.95], [0.6, 0.45, 0.65, 0.55]], [0.9, 0.9], [0, 0])
    det = PyramidDetector(model)([torch.zeros(3, 88, 117)])[0]
    got = sorted(zip(det["labels"].tolist(), (det["boxes"][:, 3] - det["boxes"][:, 1]).tolist()))
    assert [lab for lab, _ in got] == [1, 2]
    assert got[0][1] == pytest.approx(0.9 * 88, abs=1) and got[1][1] == pytest.approx(0.1 * 88, abs=1)
