"""Synthetic generator modes, each `rng -> Sample`, and how a dataset mixes them by weight.

    crop    SVHN-like crops (scene.render_sample, unchanged)
    tight   tight crops: the digits fill 60-95 % of the height, outer digits sometimes cut by the border,
            the crop sometimes stretched (x 0.6-1.6), SVHN-sized images
    plaque  a house-number plaque filling much of the frame (plaque)
    scene   a window of a wall with the number small beside words, small print, windows, doors and
            other signs (wall)
    relief  a 3-D plaque: extruded, embossed or brushed-metal digits with bevel light and a cast shadow,
            yaw, pitch and rotation up to 35 degrees, camera faults (relief, lens)
    cut     a tight crop of such a number: first or last digit cut by the border, top or bottom shaved, the
            crop resized to a square or another aspect, steep views, camera faults (relief, lens)
    sign    a whole sign photo: the big number on a plate above a name band and a panel of small print
            (words, room lists, arrows); only the big number's digits are boxed (sign)

All modes share the box rule of render: tight boxes from final-resolution masks, a digit boxed iff
>= 50 % of its ink is inside the image (never 30-70 %), letters and text never boxed as digits (the
number's letter and, in the crop and cut modes, cut digits, in the sign mode small-print digits, in the
scene mode each letter of the words on the number's line ("303 PARK LANE"), are boxed as lookalikes).

Mixing: `pick_mode(rng, weights)` draws the mode of an image from the image's own generator before it
is rendered, except when only one mode has weight (then nothing is drawn, so {"crop": 1} and no modes at
all give the very same bytes as before modes existed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import canvas_for, cut_borders, finish, first_draw, warped_boxes
from digitdet.data.synth.plaque import render_plaque
from digitdet.data.synth.relief import render_cut, render_relief
from digitdet.data.synth.render import Sample, layout, number_chars, sample_style, translate
from digitdet.data.synth.scene import draw_plate, render_sample
from digitdet.data.synth.sign import render_sign
from digitdet.data.synth.wall import render_scene
from digitdet.errors import DataError

MODES = ("crop", "tight", "plaque", "scene", "relief", "cut", "sign")
DEFAULT_MODES = {"crop": 1.0}
_EXAMPLE = "crop=0.4,tight=0.2,plaque=0.2,scene=0.2"


def _bad(what: str) -> DataError:
    return DataError(f"synthetic modes: {what}; known modes: {', '.join(MODES)} (e.g. --modes {_EXAMPLE})")


def check_modes(modes: Mapping[str, float] | None) -> dict[str, float]:
    """{mode: weight} with known names and finite weights >= 0, not all zero (None: {"crop": 1.0})."""
    if modes is None:
        return dict(DEFAULT_MODES)
    if not isinstance(modes, Mapping) or not modes:
        raise _bad(f"expected a non-empty {{mode: weight}} mapping, got {modes!r}")
    out = {}
    for name, w in modes.items():
        if name not in MODES:
            raise _bad(f"unknown mode {name!r}")
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise _bad(f"weight of {name!r} must be a number, got {w!r}")
        if not math.isfinite(w) or w < 0:
            raise _bad(f"weight of {name!r} must be finite and >= 0, got {w!r}")
        out[name] = float(w)
    if not any(out.values()):
        raise _bad("all weights are zero")
    return out


def parse_modes(text: str) -> dict[str, float]:
    """'crop=0.4,tight=0.2' -> {'crop': 0.4, 'tight': 0.2} (DataError naming the known modes if bad)."""
    out: dict[str, float] = {}
    for part in str(text).split(","):
        name, eq, value = (p.strip() for p in part.partition("="))
        if not name or not eq:
            raise _bad(f"expected NAME=WEIGHT[,NAME=WEIGHT...], got {text!r}")
        if name in out:
            raise _bad(f"mode {name!r} given twice")
        try:
            out[name] = float(value)
        except ValueError:
            raise _bad(f"weight of {name!r} must be a number, got {value!r}") from None
    return check_modes(out)


def pick_mode(rng: np.random.Generator, modes: Mapping[str, float] | None) -> str:
    """The mode of one image, drawn from its generator (one uniform draw, none when one mode has weight)."""
    modes = check_modes(modes)
    names = [m for m in MODES if modes.get(m, 0.0) > 0]
    if len(names) == 1:
        return names[0]
    w = np.array([modes[m] for m in names])
    k = int(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(), side="right"))
    return names[min(k, len(names) - 1)]


def render_mode(rng: np.random.Generator, mode: str) -> Sample:
    if mode not in RENDERERS:
        raise _bad(f"unknown mode {mode!r}")
    return RENDERERS[mode](rng)


def render_mixed(rng: np.random.Generator, modes: Mapping[str, float] | None = None) -> Sample:
    """One image of a dataset mixing `modes` by weight (None: the crop mode alone)."""
    return RENDERERS[pick_mode(rng, modes)](rng)


# ---------------------------------------------------------------- tight


def render_tight(rng: np.random.Generator) -> Sample:
    """A tight crop: the digits 60-95 % of the image height, little margin, sometimes an outer digit cut
    by the left/right border (boxed only when >= 50 % of its ink shows), sometimes stretched in x."""
    return first_draw(_tight_once, rng, "tight")


def _tight_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    chars, labels = number_chars(rng)
    height = float(np.exp(rng.uniform(np.log(40), np.log(200))))  # final image height, before a cap
    frac = float(rng.uniform(0.6, 0.95))
    R = float(np.clip(frac * height * rng.uniform(0.9, 1.2), 22, 56))
    bg_col, fg_col = sty.sample_colors(rng)
    plate = rng.random() < 0.35
    wall_col = sty.color_with_lum(rng, float(rng.uniform(0.05, 0.95))) if plate else bg_col
    glyphs = layout(rng, chars, labels, sample_style(rng, R, fg_col, bg_col), R)
    is_digit = np.array([g.label is not None for g in glyphs])
    if not is_digit.any():
        return None
    nbs = np.array([g.nbox() for g in glyphs], dtype=np.float64)
    nb = (nbs[:, 0].min(), nbs[:, 1].min(), nbs[:, 2].max(), nbs[:, 3].max())
    a = np.deg2rad(np.clip(rng.normal(0, 2.5), -8, 8))
    shear = float(np.clip(rng.normal(0, 0.05), -0.15, 0.15))
    ax = float(rng.uniform(0.6, 1.6)) if rng.random() < 0.35 else 1.0
    H0 = (np.diag([ax, 1.0, 1.0]) @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
          @ np.array([[1, shear, 0], [0, 1, 0], [0, 0, 1]]) @ translate(-(nb[0] + nb[2]) / 2, -(nb[1] + nb[3]) / 2))
    wb = warped_boxes(glyphs, H0)
    hs = (wb[:, 3] - wb[:, 1])[is_digit]
    ey0, ey1 = wb[:, 1].min(), wb[:, 3].max()
    Hc = min(float(np.median(hs)) / frac, float(hs.min()) / 0.63)
    if Hc < ey1 - ey0 + 1:
        Hc = ey1 - ey0 + 1
        if hs.min() / Hc < 0.62:
            return None
    Hc = int(np.ceil(Hc))
    y0 = ey0 - rng.uniform(0, 1) * (Hc - (ey1 - ey0))
    dh = float(np.median(hs))
    x0, x1 = cut_borders(rng, glyphs, H0, wb, dh, p_cut=0.3)
    Wc = max(2, int(np.ceil(x1 - x0)))
    H = translate(-x0, -y0) @ H0
    s = min(height / Hc, 320 / max(Wc, Hc))
    final = round(Wc * s), round(Hc * s)
    if final[1] < 32:  # a long number squeezed under the 320 px cap: draw another
        return None

    cb = canvas_for(H, (Wc, Hc), nb, 14 * R)
    P0 = np.zeros((cb[3] - cb[1], cb[2] - cb[0], 3), np.float32)
    A0 = np.zeros(P0.shape[:2], np.float32)
    if plate:
        draw_plate(rng, P0, A0, nb, R, cb[0], cb[1], bg_col, fg_col)
    back = sty.background(rng, Hc, Wc, wall_col, R)
    sty.add_structures(rng, back, R, (wb[:, 0].min() - x0, ey0 - y0, wb[:, 2].max() - x0, ey1 - y0))
    return finish(rng, number=glyphs, P0=P0, A0=A0, origin=(cb[0], cb[1]), H=H, size=(Wc, Hc), back=back,
                  final=final, R=R, h_final=dh * s, strict=strict)


RENDERERS: dict[str, Callable[[np.random.Generator], Sample]] = {
    "crop": render_sample, "tight": render_tight, "plaque": render_plaque, "scene": render_scene,
    "relief": render_relief, "cut": render_cut, "sign": render_sign,
}
