"""Whole-photo detection: pyramid levels, tiles, trusted bands and the merge, with a stand-in detector
that finds bright blobs only at the sizes a trained model knows (20-80 px tall)."""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from digitdet.reading.pyramid import PyramidDetector, PyramidSettings, level_scales, tile_origins


class BlobDetector(nn.Module):
    """Boxes of bright connected blobs 20-80 px tall in each image, label 3 (digit 2), score 0.9."""

    def __init__(self):
        super().__init__()
        self.transform = nn.Identity()
        self.transform.image_mean, self.transform.image_std = [0.0] * 3, [1.0] * 3
        self.seen = []

    def forward(self, images):
        out = []
        for im in images:
            self.seen.append(tuple(im.shape[-2:]))
            lab, _ = ndimage.label(im[0].numpy() > 0.5)
            boxes = []
            for sl in ndimage.find_objects(lab):
                y, x = sl
                if 20 <= y.stop - y.start <= 80:
                    boxes.append([x.start, y.start, x.stop, y.stop])
            b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            out.append({"boxes": b, "scores": torch.full((len(b),), 0.9), "labels": torch.full((len(b),), 3)})
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
