"""`digitdet synth --slats P`: a panel of vertical slats on scene and sign walls, each slat a lookalike box
(a 1 to a digit reader: issue 22, the slatted block wall under two real signs read as 111 and 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitdet.data.synth import generate_dataset, sample_rng
from digitdet.data.synth.modes import render_mode
from digitdet.data.synth.wall import _slats, slatted_walls
from digitdet.errors import DataError


def test_each_slat_is_a_tall_thin_box_over_its_own_colour():
    """Every slat (one per block where joints cross them) is boxed: a box about a digit high, at least
    twice as tall as wide, filled with the slat's colour, not the panel's. Mutation: box the gaps."""
    for i in range(1, 21):
        R = 16 + i
        img, boxes = _slats(sample_rng(3, 0, i), float(R))
        h, w = img.shape[:2]
        assert len(boxes) >= 4
        base = img[0, 0]  # a joint or the margin: the panel's colour
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert (y1 - y0) >= 2 * (x1 - x0) and 0.5 * R <= y1 - y0 <= 3 * R
            assert np.abs(img[y0:y1, x1 - 1] - base).max() > 0.1  # the slat's colour, right of its lit edge
        xs = sorted({b[0] for b in boxes})
        assert all(b - a > 0 for a, b in zip(xs, xs[1:]))  # side by side, never on top of one another


@pytest.mark.parametrize("mode", ["scene", "sign"])
def test_slats_come_out_as_lookalikes_and_none_changes_no_pixel(mode):
    """At rate 1, many scene and sign renders list tall thin lookalikes clear of the digits; at None the
    render is the one made without the option (no draw made). Mutation: ignore the rate in wall._furnish."""
    thin = 0
    for i in range(1, 13):
        plain = render_mode(sample_rng(21, 0, i), mode)
        with slatted_walls(None):
            same = render_mode(sample_rng(21, 0, i), mode)
        assert np.array_equal(np.asarray(plain.image), np.asarray(same.image)) and plain.lookalikes == same.lookalikes
        with slatted_walls(1.0):
            s = render_mode(sample_rng(21, 0, i), mode)
        extra = [b for b in s.lookalikes if b not in plain.lookalikes]
        thin += sum((b[3] - b[1]) >= 1.5 * (b[2] - b[0]) for b in extra) >= 4
        for x0, y0, x1, y1 in extra:
            assert all(x1 <= b[0] or b[2] <= x0 or y1 <= b[1] or b[3] <= y0 for b in s.boxes)
    assert thin >= 4, f"{mode}: {thin} of 12 renders with four or more slat lookalikes"


def test_slats_option_is_recorded_and_a_bad_one_is_one_clear_error(tmp_path):
    """generate_dataset(slats=1): more lookalikes than without, the marker records the chance; out of
    [0, 1] is a DataError before anything is written. Mutation: drop `slats` from the render tasks."""
    counts = {"train": 8}
    generate_dataset(tmp_path / "a", counts, seed=5, workers=1, progress=False, modes={"sign": 1})
    generate_dataset(tmp_path / "s", counts, seed=5, workers=1, progress=False, modes={"sign": 1}, slats=1.0)
    plain, slats = (json.loads((tmp_path / k / "train.json").read_text()) for k in "as")
    assert len(slats["lookalikes"]) >= len(plain["lookalikes"]) + 20
    assert json.loads((tmp_path / "s" / "digitdet-synth.json").read_text())["slats"] == 1.0
    for bad in (1.5, -0.1, True, "0.3"):
        with pytest.raises(DataError, match="slats"):
            generate_dataset(tmp_path / "b", {"train": 2}, seed=5, workers=1, progress=False, slats=bad)
    assert not (tmp_path / "b").exists()
