"""The synthetic `scene` mode: a window of a wider photo of a wall with the house number small in it.

The number (on a plaque or straight on the wall, sometimes followed or preceded by words on the same
baseline, like "303 PARK LANE") is 12-35 % of the image height; around it: windows, a door, another sign,
notices of small print, pipes, cables and lamps. Every piece of text uses letters only (style.LETTERS),
so the house number's digits are the only digits in the picture and the only boxes. Short side 120-240 px,
long side <= 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import (
    canvas_for,
    finish,
    first_draw,
    house_wall,
    letter_boxes,
    plane_h,
    text_line,
    warped_boxes,
    words,
)
from digitdet.data.synth.plaque import (
    brush_numerals,
    camera_angles,
    draw_plaque,
    number_glyphs,
    number_style,
    plaque_font,
    plate_box,
    sample_look,
    text_lines,
    union_box,
)
from digitdet.data.synth.render import Glyph, Sample, check_chance, composite, translate

MAX_RENDER_PX = 30_000  # render at most this many pixels; larger images are upscaled at the end
_SLAT_RATE: ContextVar[float | None] = ContextVar("slat_rate", default=None)


def check_slats(slats: float | None) -> float | None:
    """The chance of a slatted panel on a wall (None: never) as a float, or DataError."""
    return check_chance(slats, "slats (the chance of a panel of vertical slats on a wall)")


@contextmanager
def slatted_walls(p: float | None) -> Iterator[None]:
    """Within it, the walls of scene and sign photos carry a panel of vertical slats (_slats) with chance `p`
    (None: never, and no draw is made: None changes no byte of the output)."""
    token = _SLAT_RATE.set(check_slats(p))
    try:
        yield
    finally:
        _SLAT_RATE.reset(token)


def render_scene(rng: np.random.Generator) -> Sample:
    """A wall with the house number small (12-35 % of the image height) among words and other things."""
    return first_draw(_scene_once, rng, "scene")


def _free(rng, rects: list, size: tuple[float, float], area: tuple, tries: int = 8) -> tuple[int, int] | None:
    """Top-left of a w x h rectangle inside `area` (x0, y0, x1, y1) overlapping none of `rects`."""
    w, h = size
    for _ in range(tries):
        u, v = rng.random(2)
        x = area[0] - 0.3 * w + u * (area[2] - area[0] - 0.4 * w)
        y = area[1] - 0.3 * h + v * (area[3] - area[1] - 0.4 * h)
        if all(x + w < r[0] or r[2] < x or y + h < r[1] or r[3] < y for r in rects):
            rects.append((x, y, x + w, y + h))
            return int(x), int(y)
    return None


def _window(rng, R: float) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """(the window's picture, its lookalike boxes in its own pixels: the whole window and, when mullions
    divide it, each pane). A pane's frame and diagonal reflection band look like a 7 or a 4 to a digit
    reader (the whole-photo reader read them so in sign photos): boxed, a model can learn them as
    lookalikes (model.lookalike_class) instead of seeing them as rare background samples."""
    w, h = int(R * rng.uniform(3, 8)), int(R * rng.uniform(3.5, 9))
    fw = max(2, int(R * rng.uniform(0.12, 0.35)))
    frame = sty.color_with_lum(rng, float(rng.choice([rng.uniform(0.8, 0.97), rng.uniform(0.05, 0.3)])))
    img = np.empty((h, w, 3), np.float32)
    img[:] = frame
    gh, gw = h - 2 * fw, w - 2 * fw
    if gh > 2 and gw > 2:
        t = np.linspace(0, 1, gh, dtype=np.float32)[:, None, None]
        top, bottom = sty.color_with_lum(rng, float(rng.uniform(0.15, 0.5))), sty.color_with_lum(rng, 0.08)
        glass = top * (1 - t) + bottom * t * np.ones((1, gw, 1), np.float32)
        xy = np.arange(gw)[None, :] + np.arange(gh)[:, None] * rng.uniform(0.5, 1.5)  # a reflection band
        band = np.abs((xy / max(gw, 1) - rng.uniform(0.2, 1.2)) % 1.0 - 0.5) < 0.08
        glass[band] = np.clip(glass[band] + rng.uniform(0.1, 0.35), 0, 1)
        img[fw:fw + gh, fw:fw + gw] = glass
        xs, ys = [], []
        for _ in range(int(rng.integers(0, 3))):  # mullions
            if rng.random() < 0.6:
                x = int(rng.uniform(0.3, 0.7) * w)
                img[:, x:x + max(1, fw // 2)] = frame
                xs.append(x)
            else:
                y = int(rng.uniform(0.3, 0.7) * h)
                img[y:y + max(1, fw // 2)] = frame
                ys.append(y)
        if xs or ys:
            return img, [(0, 0, w, h)] + _panes(w, h, fw, sorted(xs), sorted(ys))
    return img, [(0, 0, w, h)]


def _panes(w: int, h: int, fw: int, xs: list[int], ys: list[int]) -> list[tuple[int, int, int, int]]:
    """The panes between the frame and the mullions at xs (vertical) and ys (horizontal), each with the
    frame around it; slivers under 2 frame widths across are left out."""
    bar = max(1, fw // 2)
    cols = list(zip([0] + [x + bar for x in xs], xs + [w]))
    rows = list(zip([0] + [y + bar for y in ys], ys + [h]))
    return [(x0, y0, x1, y1) for y0, y1 in rows for x0, x1 in cols if min(x1 - x0, y1 - y0) >= 2 * fw + 2]


def _slats(rng, R: float) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """(a panel of vertical slats: grooved blocks, a railing's balusters, a grille; each slat's lookalike box,
    one a block where joints cross the slats). A slat about a digit high reads as a 1 to a digit reader: the
    whole-photo reader read the slatted block wall under two real signs as 111 and 11 (real_signs, looked
    at 2026-12-04), a texture the generator did not make."""
    bw = max(2, int(R * rng.uniform(0.06, 0.25)))  # a slat's width
    gap = max(2, int(R * rng.uniform(0.12, 0.6)))
    blocks = rng.random() < 0.6  # horizontal joints cut the slats into blocks about a digit high
    seg = int(R * (rng.uniform(0.6, 2.0) if blocks else rng.uniform(0.8, 3.0)))
    rows = int(rng.integers(1, 6)) if blocks else 1
    joint = max(1, int(R * rng.uniform(0.04, 0.15))) if blocks else 0
    n = int(rng.integers(4, 25))
    w, h = n * (bw + gap) + gap, rows * (seg + joint) + joint
    lum = float(rng.uniform(0.2, 0.9))
    base = sty.color_with_lum(rng, lum, sat=float(rng.uniform(0, 0.3)))
    shift = float(rng.uniform(0.15, 0.45)) * (1 if lum < 0.55 else -1)  # light slats on dark, dark grooves on light
    bar = np.clip(base + shift, 0, 1).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    edge = np.clip(bar * np.float32(rng.uniform(0.7, 1.15)), 0, 1)  # one side lit, as a relief is
    boxes = []
    for r in range(rows):
        y0 = joint + r * (seg + joint)
        for i in range(n):
            x0 = gap + i * (bw + gap)
            img[y0:y0 + seg, x0:x0 + bw] = bar
            img[y0:y0 + seg, x0:x0 + max(1, bw // 4)] = edge
            boxes.append((x0, y0, x0 + bw, y0 + seg))
    return img, boxes


def _door(rng, R: float) -> np.ndarray:
    w, h = int(R * rng.uniform(3, 5)), int(R * rng.uniform(8, 12))
    col = sty.color_with_lum(rng, float(rng.uniform(0.05, 0.9)), sat=float(rng.uniform(0, 0.6)))
    img = np.empty((h, w, 3), np.float32)
    img[:] = col
    fw = max(2, int(R * rng.uniform(0.1, 0.3)))
    img[:, :fw] = img[:, -fw:] = img[:fw] = np.clip(col * 0.6, 0, 1)
    for i in range(int(rng.integers(0, 4))):  # panels
        y0 = int(h * (0.1 + 0.22 * i))
        img[y0:y0 + int(h * 0.18), int(w * 0.2):int(w * 0.8)] *= np.float32(rng.uniform(0.8, 0.95))
    ky = int(h * 0.5)
    img[ky:ky + max(2, fw), int(w * 0.8):int(w * 0.8) + max(2, fw)] = (0.8, 0.7, 0.4)
    return img


def _text_block(rng, R: float, small: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """A sign or a notice: (colour (h, w, 3), alpha (h, w)) with lines of letters only."""
    font = sty.pick_font(rng)
    hr, _ = sty.font_metrics(font)
    size = max(5, int(round(R * (rng.uniform(0.12, 0.3) if small else rng.uniform(0.3, 0.9)) / hr)))
    n_lines = int(rng.integers(2, 7)) if small else int(rng.integers(1, 3))
    lines = [text_line(rng, font, size, words(rng, int(rng.integers(1, 4))), None) for _ in range(n_lines)]
    lines = [g for g in lines if g is not None]
    if not lines:
        return None
    lead = int(size * rng.uniform(1.1, 1.6))
    pad = int(size * rng.uniform(0.3, 1.0))
    w = max(g.ink.shape[1] for g in lines) + 2 * pad
    h = lead * len(lines) + 2 * pad
    board = rng.random() < 0.8
    bg = sty.color_with_lum(rng, float(rng.uniform(0.6, 0.97) if small else rng.uniform(0.05, 0.95)))
    fg = sty.color_with_lum(rng, float(np.clip(sty.lum(bg) + rng.choice([-0.6, 0.6]), 0.03, 0.97)))
    col = np.empty((h, w, 3), np.float32)
    col[:] = bg
    alpha = np.ones((h, w), np.float32) if board else np.zeros((h, w), np.float32)
    for i, g in enumerate(lines):
        ink = g.ink[:max(0, min(g.ink.shape[0], h - pad - i * lead)), :w - pad]
        y, x = pad + i * lead, pad
        sub = col[y:y + ink.shape[0], x:x + ink.shape[1]]
        sub[:] = sub * (1 - ink[..., None]) + fg * ink[..., None]
        a = alpha[y:y + ink.shape[0], x:x + ink.shape[1]]
        a[:] = np.maximum(a, ink)
    return col, alpha


def _furnish(rng, P: np.ndarray, A: np.ndarray, keep: tuple, R: float) -> list[tuple[int, int, int, int]]:
    """Windows, a door, another sign and notices of small print on the wall canvas (and a panel of slats, at
    the rate slatted_walls sets), none over `keep`; the windows' and slats' lookalike boxes in canvas pixels."""
    h, w = A.shape
    rects = [keep]
    area = (0, 0, w, h)
    items = []  # (colour, alpha or None: opaque, lookalike boxes in its own pixels)
    slats = _SLAT_RATE.get()
    if slats is not None and rng.random() < slats:  # first: the largest, placed while the wall is free
        panel, boxes = _slats(rng, R)
        items.append((panel, None, boxes))
    if rng.random() < 0.45:
        window, boxes = _window(rng, R)
        items.append((window, None, boxes))
    if rng.random() < 0.2:
        items.append((_door(rng, R), None, []))
    for small, p in ((False, 0.4), (True, 0.5), (True, 0.2)):
        if rng.random() < p:
            block = _text_block(rng, R, small)
            if block is not None:
                items.append((*block, []))
    looks = []
    for col, alpha, boxes in items:
        alpha = np.ones(col.shape[:2], np.float32) if alpha is None else alpha
        at = _free(rng, rects, (alpha.shape[1], alpha.shape[0]), area)
        if at is not None:
            composite(P, A, alpha, col, at[0], at[1])
            looks += [(at[0] + x0, at[1] + y0, at[0] + x1, at[1] + y1) for x0, y0, x1, y1 in boxes]
    return looks


def furnished_wall(rng: np.random.Generator, H: np.ndarray, size: tuple[int, int], keep: tuple, lim: float,
                   wall_col, R: float, margin: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int], list]:
    """(P0, A0, origin, lookalikes): the wall canvas that covers the photo of render `size` through H (at most
    `lim` around the plane box `keep`), with windows, a door, notices and structures, none within `margin`
    of `keep`; the windows' lookalike boxes in plane coordinates (compose.finish's plane_lookalikes)."""
    cb = canvas_for(H, size, keep, lim)
    origin = cb[0], cb[1]
    P0 = house_wall(rng, cb[3] - cb[1], cb[2] - cb[0], wall_col, R)
    A0 = np.ones(P0.shape[:2], np.float32)
    box = (keep[0] - origin[0] - margin, keep[1] - origin[1] - margin, keep[2] - origin[0] + margin,
           keep[3] - origin[1] + margin)
    looks = _furnish(rng, P0, A0, box, R)
    sty.add_structures(rng, P0, R, box)
    ox, oy = origin
    return P0, A0, origin, [(x0 + ox, y0 + oy, x1 + ox, y1 + oy) for x0, y0, x1, y1 in looks]


def frame_in_photo(rng: np.random.Generator, number: list[Glyph], view: np.ndarray, final: tuple[int, int],
                   h_final: float, margin: float, y_beta: tuple[float, float]):
    """(H, (Wc, Hc)): the plane -> image homography and render size of a photo of `final` (W, H) px whose
    number (seen through `view`, a plane_h about the number's centre) has its tallest digit `h_final` px
    high, placed anywhere across and at a beta(`y_beta`) height, `margin` (of the long side) from the
    borders. None when the number does not fit."""
    nb = union_box(number)
    Wf, Hf = final
    H0 = view @ translate(-(nb[0] + nb[2]) / 2, -(nb[1] + nb[3]) / 2)
    wb = warped_boxes(number, H0)
    s = h_final / float(max(b[3] - b[1] for b, g in zip(wb, number) if g.label is not None))
    Wc, Hc = int(np.ceil(Wf / s)), int(np.ceil(Hf / s))
    ex0, ey0, ex1, ey1 = wb[:, 0].min(), wb[:, 1].min(), wb[:, 2].max(), wb[:, 3].max()
    m = margin * max(Wc, Hc)
    if ex1 - ex0 + 2 * m > Wc or ey1 - ey0 + 2 * m > Hc:
        return None
    x0 = ex0 - m - rng.uniform(0, 1) * (Wc - (ex1 - ex0) - 2 * m)
    y0 = ey0 - m - rng.beta(*y_beta) * (Hc - (ey1 - ey0) - 2 * m)
    return translate(-x0, -y0) @ H0, (Wc, Hc)


def _scene_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    short = float(rng.uniform(120, 240))
    aspect = float(rng.uniform(0.62, 0.9) if rng.random() < 0.2 else rng.uniform(1.05, 1.75))  # width / height
    Wf, Hf = (short * aspect, short) if aspect > 1 else (short, short / aspect)
    k = min(1.0, 400 / max(Wf, Hf))
    Wf, Hf = int(round(Wf * k)), int(round(Hf * k))
    frac = float(rng.uniform(0.12, 0.35))
    h_final = frac * Hf
    R = float(np.clip(h_final / max(1.0, np.sqrt(Wf * Hf / MAX_RENDER_PX)) * rng.uniform(0.95, 1.1), 16, 48))

    look = sample_look(rng, plate_p=0.55)
    font = plaque_font(rng) if rng.random() < 0.5 else sty.pick_font(rng)
    st = number_style(rng, R, look, font)
    number = number_glyphs(rng, st, R)
    if not any(g.label is not None for g in number):
        return None
    if look.num_finish == "brushed":
        brush_numerals(rng, number, look.num_col, R)
    nb = union_box(number)
    extra: list[Glyph] = []
    letters: list[tuple[int, int, int, int]] = []
    if rng.random() < 0.45:  # words on the number's baseline: "303 PARK LANE" (their letters are lookalikes)
        text = words(rng, int(rng.integers(1, 3)))
        g = text_line(rng, font, st.size, text, look.num_col)
        if g is not None:
            gap = R * rng.uniform(0.35, 0.8)
            g.x = int(round(nb[2] + gap - g.box[0])) if rng.random() < 0.75 else int(round(nb[0] - gap - g.box[2]))
            extra.append(g)
            letters = letter_boxes(font, st.size, text, g)
    if look.plate != "none":
        extra += text_lines(rng, union_box(number + extra), R, font, look.num_col, p=0.35)
    content = union_box(number + extra)
    pb = plate_box(rng, content, R) if look.plate != "none" else content

    yaw, pitch, roll = camera_angles(rng, 0.3, 40)
    dist = Wf * R / h_final * rng.uniform(1.0, 2.5)
    framed = frame_in_photo(rng, number, plane_h(yaw, pitch, roll, dist), (Wf, Hf), h_final, 0.03, (1.5, 1.5))
    if framed is None:
        return None
    H, (Wc, Hc) = framed

    P0, A0, origin, windows = furnished_wall(rng, H, (Wc, Hc), pb, 1.5 * max(Wc, Hc), look.wall_col, R, 0.4 * R)
    draw_plaque(rng, P0, A0, origin, pb, R, look, content)
    for g in extra:
        for alpha, col in g.layers:
            composite(P0, A0, alpha, col, g.x - origin[0], g.y - origin[1])
    back = np.empty((Hc, Wc, 3), np.float32)
    back[:] = look.wall_col
    return finish(rng, number=number, P0=P0, A0=A0, origin=origin, H=H, size=(Wc, Hc), back=back,
                  final=(Wf, Hf), R=R, h_final=h_final, strict=strict, plane_lookalikes=windows + letters)
