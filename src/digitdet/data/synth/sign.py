"""The synthetic `sign` mode: a whole phone photo of a building sign, the answer being its big number.

A number plate (mostly dark, the number in light sans) above or beside a coloured name band and a panel
of small print: lines of words, room-number lists ("215, 216, 217"), a word with a number ("LEVEL 2",
"ACCESS VIA 306"), arrows; on a brick, render or panelled wall with windows and notices around, seen at
up to 35 degrees. The number's digits are 4-14 % of the image height (short side 300-480 px).

Only the big number's digits are boxed as digits (its whole-number truth is theirs, as
reading.numbers.ground_truth_number reads boxes); every small-print digit is a glyph of its own listed
among the lookalikes (they look like digits and are not the answer); words and arrows are never boxed.
It targets the sign photos the bundled reader misread: small print beside the number.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import (
    finish,
    first_draw,
    plane_h,
    text_line,
    words,
)
from digitdet.data.synth.plaque import camera_angles, number_glyphs, number_style, plaque_font, sample_look, union_box
from digitdet.data.synth.relief import through_lens
from digitdet.data.synth.render import Glyph, Sample, Style, composite, make_glyph, sample_number
from digitdet.data.synth.wall import frame_in_photo, furnished_wall

MAX_RENDER_PX = 200_000  # render at most this many pixels; larger photos are upscaled at the end
SMALL_MAX = 0.45  # small print is at most this fraction of the big digits' height


def _token_glyphs(rng, font: str, size: int, text: str, col, x: float, y: float) -> tuple[list[Glyph], float]:
    """Glyphs of `text` with its baseline at plane (x, y): runs of letters as text lines (never boxed),
    each digit a glyph of its own (label None: a lookalike). Returns the glyphs and the x after them."""
    out: list[Glyph] = []
    run = ""
    for ch in text + "\0":
        if ch.isdigit() or ch == "\0":
            if run.strip():
                g = text_line(rng, font, size, run, col)
                if g is not None:
                    g.x, g.y = int(round(x + g.x)), int(round(y + g.y))
                    out.append(g)
                    x = g.nbox()[2] + size * 0.28 * (run[-1] == " ")
            elif run:
                x += size * 0.28
            run = ""
            if ch.isdigit():
                g = make_glyph(ch, Style(font=font, size=size, sx=1.0, fill=np.asarray(col, np.float32)), None)
                if g is not None:
                    g.x, g.y = int(round(x - g.box[0])), int(round(y + g.y))
                    out.append(g)
                    x = g.nbox()[2] + size * 0.06
        else:
            run += ch
    return out, x


def _small_text(rng: np.random.Generator) -> str:
    """One line of a sign's small print: words, a room list, or a word and a number."""
    u = rng.random()
    if u < 0.35:
        return words(rng, int(rng.integers(1, 4)))
    if u < 0.7:
        first = int("".join(map(str, sample_number(rng)))) if rng.random() < 0.3 else int(rng.integers(100, 400))
        return ", ".join(str(first + k) for k in range(int(rng.integers(2, 7))))
    return f"{words(rng, 1)} {''.join(map(str, sample_number(rng)))}"


def _arrow(P: np.ndarray, A: np.ndarray, x: float, y: float, size: float, direction: int, col) -> None:
    """A filled arrow (0 right, 1 down, 2 left, 3 up) of `size` at canvas (x, y)."""
    pts = np.array([(0, 0.35), (0.55, 0.35), (0.55, 0.1), (1, 0.5), (0.55, 0.9), (0.55, 0.65), (0, 0.65)])
    c, s = np.cos(direction * np.pi / 2), np.sin(direction * np.pi / 2)
    q = (pts - 0.5) @ np.array([[c, s], [-s, c]]) + 0.5
    w = int(np.ceil(size)) + 2
    m = Image.new("L", (w, w), 0)
    ImageDraw.Draw(m).polygon([(float(a * size + 1), float(b * size + 1)) for a, b in q], fill=255)
    composite(P, A, np.asarray(m, np.float32) / 255.0, col, int(x), int(y))


def _panel(rng, P, A, origin, box, R: float, col, ink) -> list[Glyph]:
    """Lines of small print (and now and then an arrow) inside plane `box`; the digits' glyphs are returned
    (composited later by finish), the words are drawn onto the canvas now."""
    font = sty.pick_font(rng) if rng.random() < 0.4 else plaque_font(rng)
    hr, _ = sty.font_metrics(font)
    digits: list[Glyph] = []
    y = box[1]
    while True:
        size = max(5, int(round(R * rng.uniform(0.15, SMALL_MAX) / hr)))
        y += size * hr * rng.uniform(1.3, 1.9)
        if y > box[3]:
            break
        x = box[0] + R * 0.2
        if rng.random() < 0.15:
            _arrow(P, A, x - origin[0], y - size * hr - origin[1], size * hr, int(rng.integers(4)), ink)
            x += size * hr * 1.4
        glyphs, _ = _token_glyphs(rng, font, size, _small_text(rng), ink, x, y)
        for g in glyphs:
            if g.nbox()[2] > box[2]:
                continue
            if g.text:
                for alpha, c in g.layers:
                    composite(P, A, alpha, c, g.x - origin[0], g.y - origin[1])
            else:
                digits.append(g)
    return digits


def _rect(P, A, origin, box, col) -> None:
    x0, y0 = int(box[0] - origin[0]), int(box[1] - origin[1])
    h, w = int(box[3] - box[1]), int(box[2] - box[0])
    if h > 0 and w > 0:
        composite(P, A, np.ones((h, w), np.float32), np.asarray(col, np.float32), x0, y0)


def render_sign(rng: np.random.Generator) -> Sample:
    """A whole sign photo: the big number among words, arrows and small print; only its digits boxed."""
    return first_draw(_sign_once, rng, "sign")


def _sign_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    short = float(rng.uniform(300, 480))
    Wf, Hf = (short, short / 0.75) if rng.random() < 0.6 else (short / 0.75, short)
    Wf, Hf = int(round(Wf)), int(round(Hf))
    h_final = float(rng.uniform(0.04, 0.14)) * Hf
    R = float(np.clip(h_final / max(1.0, np.sqrt(Wf * Hf / MAX_RENDER_PX)) * rng.uniform(0.95, 1.1), 16, 48))

    look = sample_look(rng, plate_p=1.0)
    if rng.random() < 0.6:  # the usual campus plate: black, white numerals
        look.plate_col = sty.color_with_lum(rng, float(rng.uniform(0.02, 0.12)), sat=0.1)
        look.num_col = sty.color_with_lum(rng, float(rng.uniform(0.85, 0.97)), sat=0.03)
    font = plaque_font(rng) if rng.random() < 0.4 else sty.pick_font(rng)
    st: Style = number_style(rng, R, look, font)
    st.ext, st.shadow = None, None
    number = number_glyphs(rng, st, R)
    if not any(g.label is not None for g in number):
        return None
    nb = union_box(number)
    mx, my = R * rng.uniform(0.25, 0.6), R * rng.uniform(0.2, 0.45)
    plate = (nb[0] - mx, nb[1] - my, nb[2] + mx, nb[3] + my)
    width = max(plate[2] - plate[0], R * rng.uniform(3, 7))
    band = (plate[0], plate[3], plate[0] + width, plate[3] + R * rng.uniform(0.5, 1.0)) if rng.random() < 0.6 \
        else (plate[0], plate[3], plate[0], plate[3])
    panel = (plate[0], band[3], plate[0] + width, band[3] + R * rng.uniform(2, 6))
    sign = (plate[0], plate[1], max(plate[2], panel[2]), panel[3])

    yaw, pitch, roll = camera_angles(rng, 0.4, 35)
    dist = Wf * R / h_final * rng.uniform(1.0, 2.0)
    framed = frame_in_photo(rng, number, plane_h(yaw, pitch, roll, dist), (Wf, Hf), h_final, 0.04, (1.5, 2.5))
    if framed is None:  # the number mostly in the upper half (the panel below it)
        return None
    H, (Wc, Hc) = framed

    P0, A0, origin, windows = furnished_wall(rng, H, (Wc, Hc), sign, 0.8 * max(Wc, Hc), look.wall_col, R, 0.5 * R)
    _rect(P0, A0, origin, plate, look.plate_col)
    small: list[Glyph] = []
    if band[3] > band[1]:
        band_col = sty.color_with_lum(rng, float(rng.uniform(0.3, 0.7)), sat=float(rng.uniform(0.3, 0.9)))
        _rect(P0, A0, origin, band, band_col)
        small += _panel(rng, P0, A0, origin, (band[0], band[1] - R * 0.05, band[2], band[3]), R, band_col,
                        sty.color_with_lum(rng, 0.95, sat=0.0))
    panel_col = sty.color_with_lum(rng, float(rng.uniform(0.35, 0.8)), sat=float(rng.uniform(0, 0.15)))
    _rect(P0, A0, origin, panel, panel_col)
    ink = sty.color_with_lum(rng, float(np.clip(sty.lum(panel_col) + rng.choice([-0.45, 0.45]), 0.03, 0.97)))
    small += _panel(rng, P0, A0, origin, panel, R, panel_col, ink)
    back = np.empty((Hc, Wc, 3), np.float32)
    back[:] = look.wall_col
    out = finish(rng, number=number + small, P0=P0, A0=A0, origin=origin, H=H, size=(Wc, Hc), back=back,
                 final=(Wf, Hf), R=R, h_final=h_final, strict=strict, plane_lookalikes=windows)
    return through_lens(rng, out, 0.5)
