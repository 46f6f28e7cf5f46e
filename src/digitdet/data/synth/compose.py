"""Shared geometry and last steps of the tight / plaque / scene synthetic modes (see modes).

A mode draws everything but the number's digits onto a premultiplied canvas (P0 colour * alpha, A0 alpha)
in "plane coordinates" (the wall or plate, render scale: the digits are about R px tall there), lays the
number out as glyphs in the same coordinates, and chooses a homography H from the plane to the crop.
`finish` then applies the box rule of render exactly as the crop mode does: every digit's ink is
warped like the image, a digit gets a box iff >= 50 % of its ink lies inside the image (a draw that would
leave one 30-70 % inside is refused, so no digit is near the line), and the box is the tight box of its
final-resolution mask. Letters and every other mark are never boxed as digits; the number's own letter
("12A") is listed among the sample's lookalikes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from PIL import Image

from digitdet.data.synth import style as sty
from digitdet.data.synth.render import (
    LOOKALIKE_MIN_VISIBLE,
    MIN_VISIBLE,
    Glyph,
    Sample,
    apply_h,
    check_chance,
    composite,
    final_box,
    final_mask,
    pil_coeffs,
    text_patch,
    tight_box,
    translate,
)
from digitdet.data.synth.scene import CUT_BAND, VIS_MIN, VIS_TAIL, camera, degrade, warp_layer
from digitdet.errors import DataError

HALF_GAP = 0.05  # with half cuts on, only a digit this near the counting fraction is refused
# (chance of a near-half cut, the fraction of its ink from which a cut digit counts) or None
_HALF_CUTS: ContextVar[tuple[float, float] | None] = ContextVar("half_cuts", default=None)


def check_half_cuts(p: float | None, count: float = MIN_VISIBLE) -> tuple[float | None, float]:
    """(the chance of a near-half cut (None: never), the counting fraction, 0.35-0.65) as floats, or DataError."""
    p = check_chance(p, "half cuts (the chance that a cut digit keeps nearly half of its ink)")
    if isinstance(count, bool) or not isinstance(count, (int, float)) or not 0.35 <= count <= 0.65:
        raise DataError(f"half count (the fraction of its ink from which a cut digit counts) must be in "
                        f"[0.35, 0.65], got {count!r}")
    if p is None and count != MIN_VISIBLE:  # it would change nothing: say so rather than make the default data
        raise DataError(f"half count {count!r} needs half cuts (--half-cuts P): without them no cut digit "
                        f"lands near half its ink")
    return p, float(count)


@contextmanager
def half_cuts(p: float | None, count: float = MIN_VISIBLE) -> Iterator[None]:
    """Within it, a digit cut by the crop border keeps 30 % to `count` - 5 % (no box) or `count` + 5 % to 72 %
    (a box) of its ink with chance `p`, where it would otherwise keep clearly less or more than half; a cut
    digit counts (is boxed) from `count` of its ink (the box rule's 50 % by default; real crops' truth counts
    a digit cut at 40 % of its width) and only one within HALF_GAP of `count` is refused: the cut digits real
    crops show (issue 22), which the test splits never hold. With the defaults: 30-45 % or 55-72 %. None:
    never, and no draw is made, so None changes no byte."""
    p, count = check_half_cuts(p, count)
    token = _HALF_CUTS.set(None if p is None else (p, count))
    try:
        yield
    finally:
        _HALF_CUTS.reset(token)

# Words for lines of text (street and house names, shop signs): only letters that cannot pass for a digit
# (style.LETTERS), so a line of text never holds something a reader could call a digit.
_VOCAB_TEXT = (
    "PARK LANE AVENUE WAY MARKET CHURCH CEDAR MAPLE ELM WALNUT CHERRY VALLEY HEATHER FERN DUKE KENT TEMPLE "
    "HALL FARM ACRE UPPER PARKWAY ARCADE CAFE DENTAL RENT CENTER NEW TERRACE PLACE YARD MEWS NURSERY HARPER "
    "MANNER CRAFT TAVERN DRY CLEAN BAKERY PHARMACY TAXI ENTRANCE EXIT PRIVATE DELIVERY REAR HEAD DEPT UNIT "
    "PARCEL FLAT APARTMENT WEST EAST NEAR LEFT RIGHT ENTER HANNAH KATE ANNE PETER MARY FRED WALTER"
)
WORDS = tuple(w for w in _VOCAB_TEXT.split() if set(w) <= set(sty.LETTERS))
WORDS_TITLE = tuple(t for t in (w[0] + w[1:].lower() for w in WORDS) if set(t) <= set(sty.LETTERS))


def words(rng: np.random.Generator, n: int) -> str:
    """n words of street-sign text (upper case, or title case when every letter allows it)."""
    pool = WORDS_TITLE if rng.random() < 0.4 else WORDS
    return " ".join(pool[int(i)] for i in rng.integers(len(pool), size=n))


def text_line(rng: np.random.Generator, font: str, size: int, text: str, col) -> Glyph | None:
    """A line of text as an unlabeled glyph (label None: never boxed), at plane position (0, 0)."""
    g = text_patch(font, size, text)
    if g is not None:
        g.layers = [(g.ink, col)]
    return g


def letter_boxes(font: str, size: int, text: str, g: Glyph) -> list[tuple[int, int, int, int]]:
    """Plane boxes of each letter of `g`, a text_line of `text` in `font` at `size` placed at (g.x, g.y): the
    ink in the columns from the letter's advance to the next one's (the font's own layout, as text_patch
    drew it). Words at the number's size beside it ("8 PLACE", "FLAT 31") are where a reader takes T, L, A,
    D or H for a digit (issue 22, val22 scene misses): each letter is a lookalike, as a number's letter is."""
    f = sty.get_font(font, max(5, size))
    x_ink = 1 - f.getbbox(text, anchor="ls")[0]  # text_patch's pen start in its patch
    out = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        x0 = max(0, int(np.floor(x_ink + f.getlength(text[:i]))))
        x1 = min(g.ink.shape[1], int(np.ceil(x_ink + f.getlength(text[:i + 1]))))
        b = tight_box(g.ink[:, x0:x1]) if x1 > x0 else None
        if b is not None:
            out.append((g.x + x0 + b[0], g.y + b[1], g.x + x0 + b[2], g.y + b[3]))
    return out


def plane_h(yaw: float, pitch: float, roll: float, dist: float, scale: float = 1.0) -> np.ndarray:
    """Plane -> image homography of a camera `dist` plane units in front of the plane's origin, the plane
    turned by yaw (about the vertical axis), pitch and roll (degrees); the origin maps to (0, 0) at
    `scale` image px per plane unit (before foreshortening)."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rot = ry @ rx @ rz
    h = np.diag([scale * dist, scale * dist, 1.0]) @ np.column_stack([rot[:, 0], rot[:, 1], [0, 0, dist]])
    return h / h[2, 2]


def warp_patch(a: np.ndarray, x: int, y: int, H: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Warp a float (h, w) patch whose top-left is plane (x, y) by H into its own bounding canvas:
    (uint8 array, canvas x0, canvas y0 in image coordinates). Nothing is cut off, so its sum is the
    patch's whole warped ink."""
    ph, pw = a.shape
    q = apply_h(H, np.array([[x, y], [x + pw, y], [x + pw, y + ph], [x, y + ph]], dtype=np.float64))
    bx0, by0 = (int(np.floor(v)) - 1 for v in q.min(0))
    bx1, by1 = (int(np.ceil(v)) + 1 for v in q.max(0))
    m = Image.fromarray((a * 255 + 0.5).astype(np.uint8), "L")
    M = translate(-x, -y) @ np.linalg.inv(H) @ translate(bx0, by0)
    return np.asarray(m.transform((bx1 - bx0, by1 - by0), Image.PERSPECTIVE, pil_coeffs(M), Image.BILINEAR)), bx0, by0


def ink_in_image(g: Glyph, H: np.ndarray, size: tuple[int, int]) -> tuple[Image.Image, float]:
    """The glyph's ink warped into the (W, H) image and the fraction of all its warped ink inside it."""
    W, Hh = size
    a, bx0, by0 = warp_patch(g.ink, g.x, g.y, H)
    full = np.zeros((Hh, W), np.uint8)
    x0, y0 = max(bx0, 0), max(by0, 0)
    x1, y1 = min(bx0 + a.shape[1], W), min(by0 + a.shape[0], Hh)
    if x0 < x1 and y0 < y1:
        full[y0:y1, x0:x1] = a[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
    total = float(a.sum(dtype=np.float64))
    return Image.fromarray(full, "L"), (float(full.sum(dtype=np.float64)) / total if total > 0 else 0.0)


def plane_box_in_image(box, H: np.ndarray, size: tuple[int, int], final: tuple[int, int],
                       min_inside: float = 0.5, min_px: float = 6.0) -> list[float] | None:
    """The box around plane rectangle `box` after H (into a render of `size`) and the resize to `final`,
    clipped to the image; None when less than `min_inside` of its area is inside or a side is under min_px."""
    x0, y0, x1, y1 = box
    corners = H @ np.array([[x0, x1, x1, x0], [y0, y0, y1, y1], [1.0, 1.0, 1.0, 1.0]])
    xs, ys = corners[0] / corners[2], corners[1] / corners[2]
    sx, sy = final[0] / size[0], final[1] / size[1]
    b = np.array([xs.min() * sx, ys.min() * sy, xs.max() * sx, ys.max() * sy])
    c = np.clip(b, 0, [final[0], final[1], final[0], final[1]])
    area = (b[2] - b[0]) * (b[3] - b[1])
    inside = max(0.0, c[2] - c[0]) * max(0.0, c[3] - c[1])
    if area <= 0 or inside < min_inside * area or min(c[2] - c[0], c[3] - c[1]) < min_px:
        return None
    return [float(v) for v in c]


def warped_boxes(glyphs: list[Glyph], H: np.ndarray) -> np.ndarray:
    """(n, 4) tight boxes [x0, y0, x1, y1] of each glyph's ink (alpha >= 0.5) after H, unclipped."""
    out = []
    for g in glyphs:
        a, bx0, by0 = warp_patch(g.ink, g.x, g.y, H)
        b = tight_box(a.astype(np.float32) / 255.0) or (0, 0, 0, 0)
        out.append((b[0] + bx0, b[1] + by0, b[2] + bx0, b[3] + by0))
    return np.array(out, dtype=np.float64)


def cut_edge(g: Glyph, H: np.ndarray, visible: float, left: bool) -> float:
    """Image x of a vertical border that leaves `visible` of g's warped ink inside (left or right border)."""
    a, bx0, _ = warp_patch(g.ink, g.x, g.y, H)
    cum = np.cumsum(a.sum(0, dtype=np.float64))
    if left:
        return float(bx0 + np.searchsorted(cum, (1 - visible) * cum[-1]))
    return float(bx0 + np.searchsorted(cum, visible * cum[-1]) + 1)


def cut_borders(rng: np.random.Generator, glyphs: list[Glyph], H: np.ndarray, wb: np.ndarray, dh: float,
                p_cut: float, low: tuple[float, float] = (0.08, 0.3), p_low: float = 0.5) -> tuple[float, float]:
    """Left and right image x of a tight crop around `glyphs` (their warped boxes `wb`, digit height `dh`):
    each side cuts through its outer glyph with chance `p_cut` (one side only on a number under 3 glyphs),
    leaving clearly less (`low`, with chance `p_low`) or clearly more (0.72-0.95) than half of its ink
    inside, never near the box rule's 50 % (within half_cuts: nearer it, see there); an uncut side keeps a
    small margin."""
    n = len(glyphs)
    cut_l, cut_r = n > 1 and rng.random() < p_cut, n > 1 and rng.random() < p_cut
    if cut_l and cut_r and n < 3:
        cut_l, cut_r = (True, False) if rng.random() < 0.5 else (False, True)

    half = _HALF_CUTS.get()

    def visible() -> float:
        v = rng.uniform(*low) if rng.random() < p_low else rng.uniform(0.72, 0.95)
        if half is not None and rng.random() < half[0]:  # nearer the counting fraction, on the same side
            c = half[1]
            v = rng.uniform(0.3, c - HALF_GAP) if v < 0.5 else rng.uniform(c + HALF_GAP, 0.72)
        return float(v)

    x0 = cut_edge(glyphs[0], H, visible(), True) if cut_l else wb[:, 0].min() - rng.uniform(0.02, 0.3) * dh
    x1 = cut_edge(glyphs[-1], H, visible(), False) if cut_r else wb[:, 2].max() + rng.uniform(0.02, 0.3) * dh
    return float(x0), float(x1)


def canvas_for(H: np.ndarray, size: tuple[int, int], keep: tuple, lim: float) -> tuple[int, int, int, int]:
    """Plane rectangle (x0, y0, x1, y1) to draw so the crop of `size` is covered, at most `lim` around
    `keep` (a plane box that must be inside)."""
    W, Hh = size
    c = apply_h(np.linalg.inv(H), np.array([[0, 0], [W, 0], [W, Hh], [0, Hh]], dtype=np.float64))
    x0 = int(np.floor(max(min(c[:, 0].min(), keep[0]), keep[0] - lim))) - 2
    y0 = int(np.floor(max(min(c[:, 1].min(), keep[1]), keep[1] - lim))) - 2
    x1 = int(np.ceil(min(max(c[:, 0].max(), keep[2]), keep[2] + lim))) + 2
    y1 = int(np.ceil(min(max(c[:, 1].max(), keep[3]), keep[3] + lim))) + 2
    return x0, y0, x1, y1


def brushed(rng: np.random.Generator, h: int, w: int, color, unit: float, vertical: bool = False) -> np.ndarray:
    """(h, w, 3) brushed metal around `color`: fine streaks along the brushing and a broad sheen across."""
    if vertical:
        h, w = w, h
    k = max(2, int(w / max(2.0, unit * rng.uniform(0.3, 1.2))))
    streak = np.asarray(Image.fromarray(rng.standard_normal((h, k)).astype(np.float32), "F").resize(
        (w, h), Image.BILINEAR))
    sheen = np.asarray(Image.fromarray(rng.random((2, 4)).astype(np.float32), "F").resize((w, h), Image.BICUBIC))
    f = 1 + streak * rng.uniform(0.04, 0.12) + (sheen - 0.5) * rng.uniform(0.2, 0.6)
    out = np.clip(np.asarray(color, np.float32) * f[..., None].astype(np.float32), 0, 1)
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if vertical else out


HOUSE_P = (0.12, 0.24, 0.15, 0.2, 0.22, 0.07)  # photo, brick, wood, siding, stucco, gradient (sty.background)
HOUSE_TEXTURES = ("brick", "gravel")  # photos that pass for a house wall (no faces, no handwriting)


def house_wall(rng: np.random.Generator, h: int, w: int, color, unit: float) -> np.ndarray:
    """(h, w, 3) float32 wall of a house: cladding panels, brick, wood, siding, render, a brick photo."""
    if rng.random() < 0.15:
        return _panels(rng, h, w, color, unit)
    return sty.background(rng, h, w, color, unit, p=HOUSE_P, names=HOUSE_TEXTURES).astype(np.float32)


def _panels(rng: np.random.Generator, h: int, w: int, color, unit: float) -> np.ndarray:
    """Facade cladding: large flat panels with thin dark joints and a slight tint per panel."""
    pw, ph = unit * rng.uniform(2.5, 8), unit * rng.uniform(1.5, 5)
    xs = np.arange(w) + rng.uniform(0, pw)
    ys = np.arange(h) + rng.uniform(0, ph)
    cols, rows = (xs // pw).astype(int), (ys // ph).astype(int)
    tint = (1 + rng.normal(0, 0.04, (rows[-1] + 1, cols[-1] + 1))).astype(np.float32)
    out = np.asarray(color, np.float32) * tint[rows[:, None], cols[None, :], None]
    t = max(1.0, unit * rng.uniform(0.03, 0.08))
    seam = ((ys % ph) < t)[:, None] | ((xs % pw) < t)[None, :]
    out[seam] *= np.float32(rng.uniform(0.4, 0.75))
    return np.clip(out, 0, 1)


def finish(rng: np.random.Generator, *, number: list[Glyph], P0: np.ndarray, A0: np.ndarray,
           origin: tuple[int, int], H: np.ndarray, size: tuple[int, int], back: np.ndarray, final: tuple[int, int],
           R: float, h_final: float, strict: bool, cut_lookalikes: bool = False,
           plane_lookalikes: list = ()) -> Sample | None:
    """Lay `number` over the plane canvas (P0, A0 with top-left at plane `origin`), warp it by H into a
    crop of render `size` over `back` ((h, w, 3) float), light, grade, resize to `final` (W, H), box the
    digits and degrade. None when the draw is refused: a digit 30-70 % inside, no digit boxed, or (if
    strict) a digit barely visible. `cut_lookalikes`: a digit cut by the border (15-50 % of its ink inside,
    no box) is listed among the lookalikes, as the crop mode lists cut neighbours. `plane_lookalikes`: plane
    boxes (x0, y0, x1, y1) of things that look like digits (windows: wall._window) listed among the
    lookalikes as they appear in the image (plane_box_in_image)."""
    Wc, Hc = size
    digits = [g for g in number if g.label is not None]
    inks = [ink_in_image(g, H, size) for g in digits]
    half = _HALF_CUTS.get()
    count = MIN_VISIBLE if half is None else half[1]  # a digit is boxed from this fraction of its ink
    lo, hi = CUT_BAND if half is None else (count - HALF_GAP, count + HALF_GAP)
    if any(lo < f < hi for _, f in inks) or not any(f >= count for _, f in inks):
        return None
    ox, oy = origin
    P, A = P0.copy(), A0.copy()
    for g in number:
        for alpha, col in g.layers:
            composite(P, A, alpha, col, g.x - ox, g.y - oy)
    M = translate(-ox, -oy) @ np.linalg.inv(H)
    kb = warped_boxes(digits, H)
    wx0, wy0 = (max(0, int(np.floor(v)) - 2) for v in kb[:, :2].min(0))
    wx1, wy1 = min(Wc, int(np.ceil(kb[:, 2].max())) + 2), min(Hc, int(np.ceil(kb[:, 3].max())) + 2)
    wx1, wy1 = max(wx1, wx0 + 1), max(wy1, wy0 + 1)
    fg = warp_layer(P, A, size, M)
    fg0 = warp_layer(P0, A0, (wx1 - wx0, wy1 - wy0), M @ translate(wx0, wy0))
    without = (back[wy0:wy1, wx0:wx1] * (1 - fg0[..., 3:4]) + fg0[..., :3]).astype(np.float32)
    img = (back * (1 - fg[..., 3:4]) + fg[..., :3]).astype(np.float32)
    img, without = camera(rng, img, R, (without, wx0, wy0))
    diff = np.zeros((Hc, Wc), np.float32)
    diff[wy0:wy1, wx0:wx1] = np.abs(sty.lum(img[wy0:wy1, wx0:wx1]) - sty.lum(without))
    vis = [float(diff[ma].mean()) for ma in (np.asarray(m) >= 128 for m, _ in inks) if ma.any()]
    v = min(vis) if vis else 0.0
    if strict and v < VIS_MIN and not (v >= VIS_TAIL and rng.random() < 0.3):
        return None

    Wf, Hf = final
    gamma = float(rng.uniform(0.8, 1.2))
    flt = (Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX)[int(rng.integers(4))]
    lut = (np.linspace(0, 1, 256) ** gamma * 255 + 0.5).astype(np.uint8).tolist()
    im = Image.fromarray((img * 255 + 0.5).astype(np.uint8), "RGB").point(lut * 3).resize((Wf, Hf), flt)
    boxes, labels, masks = [], [], []
    for g, (m, frac) in zip(digits, inks):
        if frac < count:
            continue
        if not _solid(m):
            return None
        mk = final_mask(m, (Wf, Hf), shrink=Wf < Wc)
        b = tight_box(mk.astype(np.float32))
        if b is None:
            continue
        boxes.append([float(x) for x in b])
        labels.append(int(g.label))
        masks.append(mk)
    if not boxes:
        return None
    # Lookalikes: the number's letter ("12A"); its other text is never one glyph.
    looks = []
    for g in number:
        if g.label is None and not g.text:
            m, frac = ink_in_image(g, H, size)
            b = final_box(m, (Wf, Hf), Wf < Wc) if frac >= LOOKALIKE_MIN_VISIBLE else None
            if b is not None:
                looks.append(b)
    looks += [b for b in (plane_box_in_image(p, H, size, (Wf, Hf)) for p in plane_lookalikes) if b is not None]
    if cut_lookalikes:
        for m, frac in inks:
            b = final_box(m, (Wf, Hf), Wf < Wc) if LOOKALIKE_MIN_VISIBLE <= frac < count else None
            if b is not None:
                looks.append(b)
    return Sample(degrade(rng, im, h_final), boxes, labels, masks, visibility=v, lookalikes=looks)


def _solid(m: Image.Image) -> bool:
    """True when the ink's box at alpha >= 0.5 (the box rule) spans its faint ink too (alpha >= 0.2):
    a hairline that the warp left below 0.5 would otherwise get a box on part of a visible digit."""
    a = np.asarray(m)
    hard, faint = tight_box(a >= 128), tight_box(a >= 51)
    if hard is None or faint is None:
        return False
    w, h = faint[2] - faint[0], faint[3] - faint[1]
    return all(abs(a - b) <= max(1.5, 0.12 * size) for a, b, size in zip(hard, faint, (w, h, w, h)))


def first_draw(once, rng: np.random.Generator, name: str) -> Sample:
    """once(rng, strict) until it gives a sample (strict for the first 7 tries, like the crop mode)."""
    for attempt in range(60):
        s = once(rng, attempt < 7)
        if s is not None:
            return s
    raise DataError(f"synthetic {name} sample: no usable draw in 60 attempts")  # pragma: no cover
