"""`digitdet synth --half-cuts P [--half-count F]`: a digit cut by the crop border keeps nearly F of its ink
(30 % to F - 5 %: no box; F + 5 % to 72 %: a box; F = 0.5: 30-45 % or 55-72 %), as real crops cut at half a
digit do (issue 22: the line recogniser dropped a last digit cut at 0.4 of its width), where the cut and
tight modes otherwise keep clearly less or more than half; a cut digit then counts from F of its ink."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitdet.data.synth import compose, generate_dataset, sample_rng
from digitdet.data.synth.compose import half_cuts
from digitdet.data.synth.modes import render_mode
from digitdet.errors import DataError


def _visible_draws(monkeypatch) -> list[float]:
    drawn: list[float] = []
    real = compose.cut_edge

    def spy(g, H, visible, left):
        drawn.append(visible)
        return real(g, H, visible, left)

    monkeypatch.setattr(compose, "cut_edge", spy)
    return drawn


@pytest.mark.parametrize("mode", ["cut", "tight"])
def test_cuts_land_near_half_only_within_the_option_and_none_changes_no_pixel(mode, monkeypatch):
    """Every cut the border makes keeps 30-45 % or 55-72 % of the digit's ink at rate 1, and clearly less
    (<= 30 %) or more (>= 72 %) without it; at None the render is the one made without the option.
    Mutation: ignore the rate in compose.cut_borders."""
    drawn = _visible_draws(monkeypatch)
    for i in range(1, 16):
        plain = render_mode(sample_rng(8, 0, i), mode)
        with half_cuts(None):
            same = render_mode(sample_rng(8, 0, i), mode)
        assert np.array_equal(np.asarray(plain.image), np.asarray(same.image)) and plain.boxes == same.boxes
    assert drawn and all(v <= 0.3 or v >= 0.72 for v in drawn)
    drawn.clear()
    with half_cuts(1.0):
        for i in range(1, 16):
            render_mode(sample_rng(8, 0, i), mode)
    assert len(drawn) >= 5 and all(0.3 <= v <= 0.45 or 0.55 <= v <= 0.72 for v in drawn)
    assert any(v < 0.5 for v in drawn) and any(v > 0.5 for v in drawn)
    drawn.clear()
    with half_cuts(1.0, 0.4):
        for i in range(1, 16):
            render_mode(sample_rng(8, 0, i), mode)
    assert len(drawn) >= 5 and all(0.3 <= v <= 0.35 or 0.45 <= v <= 0.72 for v in drawn)


def test_a_cut_digit_counts_from_the_half_count(monkeypatch):
    """Every digit made to show 47 % of its ink: with --half-count 0.4 each is boxed (counted, clear of the
    refused 35-45 %); with the default 0.5 (refused 45-55 %) and without the option (refused 30-70 %) no
    draw is usable. Mutation: the box loop of compose.finish still counts from MIN_VISIBLE (50 %)."""
    real = compose.ink_in_image

    def at_47(g, H, size):
        m, frac = real(g, H, size)
        return (m, 0.47) if g.label is not None else (m, frac)

    monkeypatch.setattr(compose, "ink_in_image", at_47)
    with half_cuts(1.0, 0.4):
        for i in range(1, 6):
            s = render_mode(sample_rng(3, 0, i), "tight")
            assert s.boxes and len(s.boxes) == len(s.labels)
    for p in (1.0, None):
        with half_cuts(p), pytest.raises(DataError, match="no usable draw"):
            render_mode(sample_rng(3, 0, 1), "tight")


def test_half_cut_digits_are_kept_boxed_or_listed_as_lookalikes_at_the_border():
    """At rate 1 (every cut near half) the cut mode's renders still hold cut digits at the image's side, as
    lookalikes (30-45 % inside) and as digits (55-72 %): the 30-70 % band no longer refuses them, only 45-55 %
    does (refused, these 40 renders hold 1 such lookalike and 8 such digits, the uncut ones that touch it).
    Mutation: keep CUT_BAND as the refused band in compose.finish."""
    boxed = looks = 0
    with half_cuts(1.0):
        for i in range(1, 41):
            s = render_mode(sample_rng(9, 0, i), "cut")
            w = s.image.width
            boxed += any(b[0] <= 1 or b[2] >= w - 1 for b in s.boxes)
            looks += any(b[0] <= 1 or b[2] >= w - 1 for b in s.lookalikes)
    assert boxed >= 12 and looks >= 6, (boxed, looks)


def test_half_cuts_option_is_recorded_and_a_bad_one_is_one_clear_error(tmp_path):
    """generate_dataset(half=..., half_count=...) records both in the folder's marker; a chance out of [0, 1]
    or a count out of [0.35, 0.65], or a count without half cuts, is a DataError before anything is written.
    Mutations: drop `half` from the marker; accept a count without half cuts."""
    generate_dataset(tmp_path / "h", {"train": 4}, seed=5, workers=1, progress=False, modes={"cut": 1}, half=0.5,
                     half_count=0.4)
    made = json.loads((tmp_path / "h" / "digitdet-synth.json").read_text())
    assert made["half_cuts"] == 0.5 and made["half_count"] == 0.4
    for bad in (1.5, -0.1, True):
        with pytest.raises(DataError, match="half cuts"):
            generate_dataset(tmp_path / "b", {"train": 2}, seed=5, workers=1, progress=False, half=bad)
    for bad in (0.3, 0.7, True):
        with pytest.raises(DataError, match="half count"):
            generate_dataset(tmp_path / "b", {"train": 2}, seed=5, workers=1, progress=False, half=0.5, half_count=bad)
    with pytest.raises(DataError, match="half count 0.4 needs half cuts"):  # given alone it would change nothing
        generate_dataset(tmp_path / "b", {"train": 2}, seed=5, workers=1, progress=False, half_count=0.4)
    assert not (tmp_path / "b").exists()
