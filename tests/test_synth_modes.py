"""The synthetic modes made for real-photo failures (relief, cut, sign), and the bytes of the older modes.

The older modes (crop, tight, plaque, scene) must keep producing the very same bytes for a seed: the shipped
reader's reproduce command (scripts/train_reader.sh) regenerates its data from them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

import test_synth
from digitdet.data.synth import MODES, PREVIEW_CELL, sample_rng
from digitdet.data.synth import plaque as synth_plaque
from digitdet.data.synth.generate import _draw_sample
from digitdet.data.synth.lens import VISIBLE_AFTER, lens, stroke_width
from digitdet.data.synth.modes import render_mixed, render_mode
from digitdet.data.synth.plaque import number_glyphs, number_style, plaque_font, sample_look
from digitdet.data.synth.relief import FINISHES, MAX_TILT, relief_number, steep_angles
from digitdet.reading.numbers import ground_truth_number


def _digest(s, leave_out=()) -> str:
    """sha256 of a sample's pixels, size, boxes, labels and lookalikes but those in leave_out (16 hex digits)."""
    h = hashlib.sha256(np.asarray(s.image).tobytes())
    looks = [b for b in s.lookalikes if b not in leave_out]
    h.update(json.dumps([list(s.image.size), s.boxes, s.labels, looks]).encode())
    return h.hexdigest()[:16]


def _digest_of(samples, leave_out=()) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(_digest(s, leave_out).encode())
    return h.hexdigest()[:16]


# Computed before the relief / cut / sign modes were added (numpy 2.4, Pillow 13 of this venv): a change
# here means a dataset made with an existing mode name is no longer what it was.
# (Images 1-16 of seed 21, computed with the code of commit 54a7d7a, before any change to the generator.)
# The windows' lookalike boxes (2026-12-04, wall._window) are left out: new boxes in the json, which only a
# model.lookalike_class model reads; the pixels, digit boxes and other lookalikes are what they were.
GOLDEN = {"crop": "2299db57af24fd26", "tight": "3501ef7cac2aa755", "plaque": "0499d4bf2bfa1350",
          "scene": "051e93ac6be3dddc"}
GOLDEN_MIX = "92f99067ec677726"  # scripts/train_reader.sh's mix, images 1-6


@pytest.mark.parametrize("mode", sorted(GOLDEN))
def test_existing_modes_keep_their_bytes(mode, monkeypatch):
    windows = test_synth.windows_recorded(monkeypatch)
    samples = [render_mode(sample_rng(21, 0, i), mode) for i in range(1, 17)]
    assert _digest_of(samples, windows) == GOLDEN[mode]


def test_the_shipped_readers_mix_keeps_its_bytes(monkeypatch):
    mix = {"crop": 0.4, "tight": 0.2, "plaque": 0.2, "scene": 0.2}
    windows = test_synth.windows_recorded(monkeypatch)
    samples = [render_mixed(sample_rng(21, 0, i), mix) for i in range(1, 7)]
    assert _digest_of(samples, windows) == GOLDEN_MIX


# ---------------------------------------------------------------- relief, cut, sign

REALISM = ("relief", "cut", "sign")


def _force_number(monkeypatch, digits: list[int] | None, p_letter: float = 0.0) -> None:
    """Every number of the relief, cut and sign modes (plaque.number_glyphs) is `digits` (None: drawn as
    usual), with a letter suffix with chance p_letter."""
    real = synth_plaque.number_chars

    def number_chars(rng, _digits=None, **_):
        return real(rng, digits, p_letter=p_letter)

    monkeypatch.setattr(synth_plaque, "number_chars", number_chars)


def _truth(s) -> str:
    return ground_truth_number(s.boxes, [lab + 1 for lab in s.labels])


def _check_tight(s) -> None:
    """Boxes inside the image, each tight on its digit's final-resolution ink mask (so all its ink is in it)."""
    W, H = s.image.size
    assert len(s.boxes) == len(s.labels) == len(s.masks) and s.boxes
    for (x0, y0, x1, y1), lab, m in zip(s.boxes, s.labels, s.masks):
        assert 0 <= lab <= 9 and m.shape == (H, W)
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        ys, xs = np.nonzero(m)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
    for x0, y0, x1, y1 in s.lookalikes:
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and [x0, y0, x1, y1] not in s.boxes


@pytest.fixture(scope="module")
def realism_samples():
    n = {"relief": 12, "cut": 16, "sign": 4}
    return {m: [render_mode(sample_rng(8, 0, i), m) for i in range(1, n[m] + 1)] for m in REALISM}


@pytest.mark.parametrize("mode", REALISM)
def test_realism_modes_are_registered_tight_and_deterministic(realism_samples, mode):
    assert mode in MODES
    for s in realism_samples[mode]:
        _check_tight(s)
    a, b = render_mode(sample_rng(8, 0, 1), mode), render_mode(sample_rng(8, 0, 1), mode)
    assert _digest(a) == _digest(b) == _digest(realism_samples[mode][0])


def test_camera_angles_stay_within_35_degrees_and_use_the_range():
    draws = np.array([steep_angles(np.random.default_rng([3, i])) for i in range(3000)])
    assert np.abs(draws).max() <= MAX_TILT == 35.0
    assert (np.abs(draws[:, 0]) > 30).mean() > 0.05 and (np.abs(draws[:, 2]) > 30).mean() > 0.03


def test_relief_number_is_read_whole_at_steep_angles(monkeypatch):
    """A 3-digit number on a relief plaque: every digit boxed (the truth is the number), the digits' row
    tilted by up to the camera's 35 degrees, not more (+5 for perspective)."""
    _force_number(monkeypatch, [2, 1, 6])
    tilts = []
    for i in range(1, 11):
        s = render_mode(sample_rng(5, 0, i), "relief")
        assert _truth(s) == "216" and not s.lookalikes
        (a, b) = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in s.boxes)[::2]
        tilts.append(np.degrees(np.arctan2(abs(b[1] - a[1]), b[0] - a[0])))
    assert max(tilts) <= MAX_TILT + 5 and max(tilts) > 10


def test_relief_layers_lie_inside_the_boxed_ink_except_the_cast_shadow():
    """Side faces and bevels are ink (boxed); only the first layer, the cast shadow, falls outside it."""
    look = sample_look(np.random.default_rng(0), plate_p=1.0)
    for kind in FINISHES:
        rng = np.random.default_rng(1)
        st = number_style(rng, 40, look, plaque_font(rng))
        st.ext, st.shadow, st.fill2 = None, None, None
        number = number_glyphs(rng, st, 40, digits=[4, 7])
        relief_number(rng, number, look, 40, kind)
        for g in number:
            shadow, *drawn = g.layers
            assert all(a.shape == g.ink.shape for a, _ in g.layers)
            assert all((a <= g.ink + 1e-6).all() for a, _ in drawn), kind
            assert (shadow[0] > 0.05).sum() > 0 and ((shadow[0] > 0.05) & (g.ink < 0.5)).any()
        if kind == "extruded":  # the side faces make the ink larger than the face alone
            assert any(len(g.layers) > 4 for g in number)


def test_cut_digits_follow_the_box_rule(monkeypatch):
    """"216" cropped tight: a digit cut by the border is boxed when most of it shows (its box touches the
    border), else it is a lookalike at that border and drops out of the truth ("16", "21")."""
    _force_number(monkeypatch, [2, 1, 6])
    seen = Counter()
    for i in range(1, 31):
        s = render_mode(sample_rng(6, 0, i), "cut")
        W, _ = s.image.size
        t = _truth(s)
        assert t in ("216", "16", "21", "1")
        left = [b for b in s.lookalikes if b[0] == 0]
        right = [b for b in s.lookalikes if b[2] == W]
        assert len(s.lookalikes) == len(left) + len(right), "every lookalike is a cut digit at a border"
        assert bool(left) == (not t.startswith("2")) and bool(right) == (not t.endswith("6"))
        seen[t] += 1
        seen["boxed and cut"] += any(b[0] == 0 or b[2] == W for b in s.boxes)
        seen["square"] += s.image.width == s.image.height
    assert seen["216"] >= 10 and seen["16"] + seen["21"] >= 3 and seen["boxed and cut"] >= 3, seen
    assert seen["square"] >= 6, seen


def test_a_letter_after_the_number_stays_a_lookalike(monkeypatch):
    _force_number(monkeypatch, [5, 0, 2], p_letter=1.0)
    for mode, i in (("relief", 1), ("relief", 2), ("sign", 1)):
        s = render_mode(sample_rng(9, 0, i), mode)
        assert _truth(s) == "502"
        right = max(b[2] for b in s.boxes)
        assert any(b[0] >= right - 2 for b in s.lookalikes), f"{mode}: the letter after 502 is a lookalike"


def test_sign_small_print_is_lookalikes_and_the_answer_is_the_big_number(monkeypatch):
    _force_number(monkeypatch, [3, 1, 4])
    for i in (1, 2, 3):
        s = render_mode(sample_rng(4, 0, i), "sign")
        W, H = s.image.size
        assert 300 <= min(W, H) <= 480 and max(W, H) <= 640
        assert _truth(s) == "314"
        big = min(b[3] - b[1] for b in s.boxes)
        assert 0.03 * H <= big <= 0.16 * H
        assert len(s.lookalikes) >= 5, "room lists and numbered words in the small print"
        assert all(b[3] - b[1] <= 0.6 * big for b in s.lookalikes)


def test_lens_keeps_the_faintest_digit_visible():
    """Low contrast and glare never take a digit's contrast below lens.VISIBLE_AFTER (a digit-sized
    square 0.12 brighter than its plate, faults at twice their usual chance)."""
    a = np.full((96, 96, 3), 0.4, np.float32)
    a[28:68, 28:68] = 0.52
    im = Image.fromarray((a * 255 + 0.5).astype(np.uint8))
    low = []
    for seed in range(40):
        out = np.asarray(lens(np.random.default_rng(seed), im, 12.0, 0.12, p=2.0), np.float32) / 255
        y = out @ np.array([0.299, 0.587, 0.114], np.float32)
        low.append(float(y[36:60, 36:60].mean() - np.r_[y[:16].ravel(), y[-16:].ravel()].mean()))
    assert min(low) >= VISIBLE_AFTER * 0.8 and min(low) < 0.11  # some faults did take contrast away


def test_lens_blur_never_takes_a_thin_stroke_away():
    """Defocus and smear are bounded by the stroke width (lens.DEFOCUS_MAX_STROKE, SMEAR_MAX_STROKE): a
    3-px dark stroke on a 100-px digit keeps a fifth of its contrast through every fault; bounded by the
    digit height alone (stroke unknown) some draws all but erased it (a cut-mode "1011" nobody could read)."""
    a = np.full((120, 120, 3), 230, np.uint8)
    a[10:110, 58:61] = 20
    ink = np.zeros((120, 120), bool)
    ink[10:110, 58:61] = True
    assert stroke_width([ink]) == pytest.approx(3.0, abs=0.1)
    im = Image.fromarray(a)

    def weakest(stroke):
        low = []
        for seed in range(60):
            y = np.asarray(lens(np.random.default_rng(seed), im, 100.0, 0.8, 1.0, stroke), np.float32).mean(2)
            low.append((np.r_[y[30:90, 40:50].ravel(), y[30:90, 70:80].ravel()].mean() - y[30:90, 58:61].mean()) / 255)
        return min(low)

    assert weakest(stroke_width([ink])) >= 0.18
    assert weakest(None) < 0.08


def test_preview_draws_small_print_lookalikes_that_shrink_below_a_pixel():
    """A whole sign photo scaled into a preview tile makes a 1-2 px lookalike box < 1 px (once an error)."""
    from digitdet.data.synth.render import Sample

    im = Image.new("RGB", (480, 640), (90, 90, 90))
    mask = np.zeros((640, 480), bool)
    mask[100:140, 200:220] = True
    s = Sample(im, [[200.0, 100.0, 220.0, 140.0]], [3], [mask], lookalikes=[[10.0, 10.0, 12.0, 13.0]])
    tile = _draw_sample(s, PREVIEW_CELL)
    assert tile.size == PREVIEW_CELL


def test_synth_help_names_every_mode(capsys):
    from digitdet.cli import main

    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    listed = capsys.readouterr().out.replace("\n", " ").split("(modes:")[1].split(";")[0]
    assert [m.strip() for m in " ".join(listed.split()).split(",")] == list(MODES)


# ---------------------------------------------------------------- windows as lookalikes


def test_a_window_box_follows_the_warp_and_resize_and_is_dropped_when_mostly_outside():
    """compose.plane_box_in_image: a plane box through a homography (a shift of +5 px) and a render of
    100 x 100 resized to 50 x 50 (half), clipped to the image. Mutations: leave out the resize; keep a box
    mostly outside; keep a sliver."""
    from digitdet.data.synth.compose import plane_box_in_image

    H = np.array([[1.0, 0, 5], [0, 1, 5], [0, 0, 1]])
    assert plane_box_in_image((10, 10, 30, 50), H, (100, 100), (50, 50)) == [7.5, 7.5, 17.5, 27.5]
    assert plane_box_in_image((80, 10, 100, 50), H, (100, 100), (50, 50)) == [42.5, 7.5, 50.0, 27.5]  # 3/4 in
    assert plane_box_in_image((60, 10, 160, 50), H, (100, 100), (50, 50)) is None  # 35 of 100 px inside
    assert plane_box_in_image((10, 10, 18, 50), H, (100, 100), (50, 50)) is None  # 4 px wide in the image


def test_window_panes_lie_between_the_frame_and_the_mullions():
    """wall._panes: a 100 x 80 window, frame 4 px, a vertical mullion at x=50 (2 px) and a horizontal one at
    y=40: four panes; a sliver pane (a mullion 6 px from the edge) is left out."""
    from digitdet.data.synth.wall import _panes

    assert _panes(100, 80, 4, [50], [40]) == [(0, 0, 50, 40), (52, 0, 100, 40), (0, 42, 50, 80), (52, 42, 100, 80)]
    assert _panes(100, 80, 4, [94], []) == [(0, 0, 94, 80)]


@pytest.mark.parametrize("mode", ["scene", "sign"])
def test_windows_on_the_wall_are_listed_as_lookalikes_clear_of_the_digits(mode, monkeypatch):
    """Windows drawn in scene and sign photos come out among the sample's lookalikes (for
    model.lookalike_class), inside the image and overlapping no digit box. Mutation: do not add
    plane_lookalikes in compose.finish; pass no windows from wall.furnished_wall."""
    windows = test_synth.windows_recorded(monkeypatch)
    listed = 0
    for i in range(1, 25):
        s = render_mode(sample_rng(21, 0, i), mode)
        W, H = s.image.size
        for x0, y0, x1, y1 in (b for b in s.lookalikes if b in windows):
            listed += 1
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert all(x1 <= b[0] or b[2] <= x0 or y1 <= b[1] or b[3] <= y0 for b in s.boxes)
    assert listed >= 5, f"{mode}: {listed} window lookalikes in 24 renders"
