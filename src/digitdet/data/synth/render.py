"""Render one synthetic SVHN-like house-number crop with tight digit boxes.

Pipeline (all randomness from the given Generator):
1. the number: 1-5 digits (SVHN's count and digit frequencies), sometimes a letter suffix ("12A");
2. glyphs from a random installed font, stretched, with a plain / outline / 3-D / bevel / drop-shadow
   style, laid out with SVHN-like gaps (touching or slightly overlapping);
3. an affine (rotation <= 15 deg, shear, squash) plus a mild perspective maps "number coordinates" to the
   crop; the crop is chosen around the transformed number like an SVHN crop (number ~ 50 % of height);
4. foreground (plate, border, screws, neighbouring cut glyphs, other signs, small text, the digits) is
   composited, warped and laid over a wall (photo texture, brick, wood, siding, stucco) with structures;
5. lighting, cast shadows, colour grading, resize to the final size, low resolution, blur, noise, JPEG.

Box rule: each digit glyph's ink (alpha >= 0.5, extrusion included, soft drop shadow excluded) is warped
exactly like the image; it gets a box iff >= 50 % of its ink lies inside the image, and the box is the
tight box of its final-resolution mask ([x0, y0, x1, y1] with x1 = last mask column + 1, so always
inside the image). Neighbouring digits cut at the crop edge are placed so that <= ~40 % shows (no box);
one that would show 30-70 % is left out, so no drawn digit is near the 50 % line. The number's own
digits are at most 30 % cut.

Lookalike rule: a glyph that is not boxed as a digit but could pass for one (a letter, a neighbouring digit
or letter cut by the crop edge; never a line of text) is listed in `Sample.lookalikes`, with the tight box
of its final-resolution mask, when >= 15 % of its ink is inside the image. They are never scored: a model
may learn them as a class of their own (model.lookalike_class).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitdet.data.synth import style as sty
from digitdet.errors import DataError

COUNT_P = np.array([0.19, 0.638, 0.159, 0.011, 0.002])
DIGIT_P = np.array([6.7, 19.6, 15.9, 11.1, 9.7, 9.2, 7.6, 7.8, 6.4, 6.1])
DIGIT_P = DIGIT_P / DIGIT_P.sum()
# A house number never starts with 0, so later positions carry more zeros (SVHN: 6.7 % of all digits).
FIRST_P = np.r_[0.0, DIGIT_P[1:]] / DIGIT_P[1:].sum()
LATER_P = np.r_[0.125, DIGIT_P[1:] * (1 - 0.125) / DIGIT_P[1:].sum()]
MIN_VISIBLE = 0.5
LOOKALIKE_MIN_VISIBLE = 0.15  # a cut glyph showing less than this is a sliver, not a lookalike
MAX_SIDE = 320  # final images stay below this (SVHN heights ~25-250 px)
# The chance of a letter suffix in every mode while letter_suffixes(p) is active (None: each mode's own).
_LETTER_RATE: ContextVar[float | None] = ContextVar("letter_rate", default=None)


@dataclass
class Sample:
    """image: PIL RGB; boxes: [x0, y0, x1, y1] floats in image pixels; labels: digit values 0..9;
    masks: one (H, W) bool array per box, the digit's ink after every geometric transform."""

    image: Image.Image
    boxes: list[list[float]]
    labels: list[int]
    masks: list[np.ndarray] = field(repr=False)
    visibility: float = 1.0  # least colour change (0..1) a number digit's ink makes in the image
    # Boxes of lone glyphs that look like a digit but must not be read: a letter ("12A"), a neighbouring
    # digit or letter cut by the crop edge (< 50 % inside). Trained as their own class when
    # model.lookalike_class is on; never scored.
    lookalikes: list[list[float]] = field(default_factory=list)


@dataclass(eq=False)
class Glyph:
    label: int | None  # digit value, or None for letters / text (never a digit box)
    x: int  # patch top-left in number coordinates
    y: int
    ink: np.ndarray  # float32 (h, w) alpha of the glyph's ink: the mask source
    layers: list  # [(alpha (h, w), colour (3,) or (h, w, 3))], composited in order
    box: tuple[int, int, int, int]  # tight ink box in patch coordinates
    text: bool = False  # a line of small text (text_patch), not one glyph: never a lookalike

    def nbox(self) -> tuple[int, int, int, int]:
        return (self.x + self.box[0], self.y + self.box[1], self.x + self.box[2], self.y + self.box[3])


@dataclass(eq=False)
class Style:
    font: str
    size: int
    sx: float
    stroke: int = 0
    outline: bool = False
    fill: np.ndarray | None = None
    fill2: np.ndarray | None = None  # vertical gradient end (metal look) or None
    stroke_col: np.ndarray | None = None
    ext: tuple[int, int, int] | None = None  # extrusion (dx, dy, steps)
    ext_col: np.ndarray | None = None
    bevel: bool = False
    shadow: tuple[int, int, float, float] | None = None  # (dx, dy, blur, opacity)


@lru_cache(maxsize=8000)
def raw_glyph(path: str, size: int, ch: str, stroke: int):
    """(ink uint8, fill uint8 or None, ox, oy): patch and its top-left relative to the baseline pen."""
    font = sty.get_font(path, size)
    left, top, right, bottom = font.getbbox(ch, anchor="ls", stroke_width=stroke)
    w, h = right - left + 2, bottom - top + 2
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((1 - left, 1 - top), ch, font=font, fill=255, anchor="ls",
                            stroke_width=stroke, stroke_fill=255)
    fill = None
    if stroke:
        im2 = Image.new("L", (w, h), 0)
        ImageDraw.Draw(im2).text((1 - left, 1 - top), ch, font=font, fill=255, anchor="ls")
        fill = np.asarray(im2)
    return np.asarray(im), fill, left - 1, top - 1


def _stretch(a: np.ndarray, sx: float) -> np.ndarray:
    w = max(1, int(round(a.shape[1] * sx)))
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((w, a.shape[0]), Image.BILINEAR))


def tight_box(a: np.ndarray) -> tuple[int, int, int, int] | None:
    m = a >= 0.5
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


_BINARY_LUT = [0] * 128 + [255] * 128


def final_mask(m: Image.Image, size: tuple[int, int], shrink: bool) -> np.ndarray:
    """A glyph's final-resolution mask (bool (H, W)) from its warped ink `m` (L, render scale).

    Ink is alpha >= 0.5 at render scale, resampled to `size`; when shrinking, a pixel is ink if >= 30 %
    of its area is, so thin strokes survive the downscale as they do in the image."""
    binary = m.point(_BINARY_LUT)
    if shrink:
        return np.asarray(binary.resize(size, Image.BOX)) >= 77
    return np.asarray(binary.resize(size, Image.BILINEAR)) >= 128


def final_box(m: Image.Image, size: tuple[int, int], shrink: bool) -> list[float] | None:
    """The tight box [x0, y0, x1, y1] of final_mask(m, size, shrink), or None below 2 px a side."""
    b = tight_box(final_mask(m, size, shrink).astype(np.float32))
    if b is None or b[2] - b[0] < 2 or b[3] - b[1] < 2:
        return None
    return [float(v) for v in b]


def make_glyph(ch: str, st: Style, label: int | None) -> Glyph | None:
    ink8, fill8, ox, oy = raw_glyph(st.font, st.size, ch, st.stroke)
    ink = ink8.astype(np.float32) / 255.0
    fill = fill8.astype(np.float32) / 255.0 if fill8 is not None else None
    if abs(st.sx - 1.0) > 0.02:
        ink = _stretch(ink, st.sx)
        fill = _stretch(fill, st.sx) if fill is not None else None
        ox = int(round(ox * st.sx))
    pad = 2
    if st.ext:
        pad += max(abs(st.ext[0]), abs(st.ext[1]))
    if st.shadow:
        pad += max(abs(st.shadow[0]), abs(st.shadow[1])) + int(2 * st.shadow[2]) + 1
    ink = np.pad(ink, pad)
    fill = np.pad(fill, pad) if fill is not None else None
    ox, oy = ox - pad, oy - pad
    layers = []
    total = ink
    if st.shadow:
        dx, dy, blur, op = st.shadow
        sh = Image.fromarray((np.roll(ink, (dy, dx), (0, 1)) * 255).astype(np.uint8))
        sh = np.asarray(sh.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255.0
        layers.append((sh * op, np.zeros(3, np.float32)))
    if st.ext:
        dx, dy, n = st.ext
        ext = np.zeros_like(ink)
        for i in range(1, n + 1):
            ext = np.maximum(ext, np.roll(ink, (round(i * dy / n), round(i * dx / n)), (0, 1)))
        layers.append((ext, st.ext_col))
        total = np.maximum(total, ext)
    if st.bevel:
        lo = np.roll(ink, (1, 1), (0, 1))
        hi = np.roll(ink, (-1, -1), (0, 1))
        layers.append((lo, np.clip(st.fill * 0.45, 0, 1)))
        layers.append((hi, np.clip(st.fill * 1.4 + 0.15, 0, 1)))
        total = np.maximum(total, np.maximum(lo, hi))
    col = st.fill
    if st.fill2 is not None:
        t = np.linspace(0, 1, ink.shape[0], dtype=np.float32)[:, None, None]
        col = st.fill * (1 - t) + st.fill2 * t
    if st.outline and fill is not None:
        layers.append((ink, st.stroke_col))
        layers.append((fill, col))
    else:
        layers.append((ink, col))
    box = tight_box(total)
    if box is None:  # hairline glyph at a small size: no pixel reaches 50 % ink; draw it bolder
        if st.stroke >= 3:
            return None
        return make_glyph(ch, replace(st, stroke=st.stroke + 1), label)
    return Glyph(label, ox, oy, total, layers, box)


def sample_style(rng: np.random.Generator, R: float, fg: np.ndarray, bg: np.ndarray) -> Style:
    font = sty.pick_font(rng)
    hr, wr = sty.font_metrics(font)
    size = max(6, 2 * int(round(R / hr / 2)))  # even sizes only: more glyph-cache hits
    sx = float(np.clip(0.55 / wr * np.exp(rng.normal(0, 0.13)), 0.5, 1.35))
    st = Style(font=font, size=size, sx=sx, fill=fg)
    if any(t in font for t in ("Thin", "ExtraLight")) and R < 36:
        st.stroke = 1  # hairlines vanish at SVHN sizes
    u = rng.random()
    if u < 0.12:  # bolder: same-colour stroke
        st.stroke = max(1, int(round(R * rng.uniform(0.02, 0.06))))
    elif u < 0.27:  # outline in another colour
        st.stroke = max(1, int(round(R * rng.uniform(0.03, 0.08))))
        st.outline = True
        st.stroke_col = sty.color_with_lum(rng, float(np.clip(sty.lum(fg) + rng.choice([-0.5, 0.5]), 0.03, 0.97)))
    if rng.random() < 0.12:  # 3-D extrusion
        n = max(1, int(round(R * rng.uniform(0.04, 0.1))))
        ang = rng.uniform(0, 2 * np.pi)
        st.ext = (int(round(n * np.cos(ang))), int(round(n * np.sin(ang))), n)
        st.ext_col = np.clip(fg * rng.uniform(0.25, 0.6), 0, 1) if sty.lum(fg) > 0.35 else \
            np.clip(fg + rng.uniform(0.25, 0.5), 0, 1)
    elif rng.random() < 0.1:
        st.bevel = True
    if rng.random() < 0.15:
        d = max(1, int(round(R * rng.uniform(0.03, 0.1))))
        st.shadow = (d * int(rng.choice([-1, 1])), d, R * rng.uniform(0.04, 0.12), float(rng.uniform(0.25, 0.6)))
    if rng.random() < 0.15:  # metallic / painted gradient
        st.fill2 = np.clip(fg * rng.uniform(0.5, 0.8), 0, 1).astype(np.float32)
        st.fill = np.clip(fg * rng.uniform(1.0, 1.3) + 0.05, 0, 1).astype(np.float32)
    return st


def sample_number(rng: np.random.Generator) -> list[int]:
    k = int(rng.choice(5, p=COUNT_P)) + 1
    if k == 1:
        return [int(rng.choice(10, p=DIGIT_P))]
    return [int(rng.choice(10, p=FIRST_P))] + [int(rng.choice(10, p=LATER_P)) for _ in range(k - 1)]


def number_chars(rng: np.random.Generator, digits: list[int] | None = None,
                 p_letter: float = 0.04) -> tuple[list[str], list]:
    """(chars, labels) of a house number: `digits` (drawn by sample_number when None), and with chance
    `p_letter` a letter suffix ("12A"; label None: a lookalike, never a digit box), or the chance that
    letter_suffixes set."""
    digits = sample_number(rng) if digits is None else digits
    chars, labels = [str(d) for d in digits], list(digits)
    rate = _LETTER_RATE.get()
    if rng.random() < (p_letter if rate is None else rate):
        chars.append(sty.LETTERS[int(rng.integers(len(sty.LETTERS)))])
        labels.append(None)
    return chars, labels


def check_chance(p: float | None, what: str) -> float | None:
    """A generator option's chance (None passes) as a float, or DataError naming it as `what`."""
    if p is None:
        return None
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise DataError(f"{what} must be in [0, 1], got {p!r}")
    return float(p)


def check_letters(letters: float | None) -> float | None:
    """The chance of a letter suffix (None: each mode's own) as a float, or DataError."""
    return check_chance(letters, "letters (the chance of a letter suffix such as '12A')")


@contextmanager
def letter_suffixes(p: float | None) -> Iterator[None]:
    """Within it, every mode gives its number a letter suffix ("58P") with chance `p` (None: each mode's own,
    4 %, 6 % on plaques): more letters to learn from, the reader's hard negatives (issue 22: letters after
    the number read as digits in relief and cut close-ups). The same draws as without it, so None changes
    no byte of the output."""
    token = _LETTER_RATE.set(check_letters(p))
    try:
        yield
    finally:
        _LETTER_RATE.reset(token)


def digit_height(rng: np.random.Generator) -> float:
    """Final digit height in px: SVHN's percentiles 15/19/24/32/54 plus a tail of large ones."""
    if rng.random() < 0.025:
        return float(np.exp(rng.uniform(np.log(55), np.log(170))))
    z = rng.normal()
    return float(max(10.0, 24.0 * np.exp(z * (0.30 if z < 0 else 0.48))))


def layout(rng, chars: list[str], labels: list, st: Style, R: float) -> list[Glyph]:
    g0 = float(np.clip(rng.normal(0.05, 0.07), -0.1, 0.4))
    if rng.random() < 0.04:
        g0 = float(rng.uniform(0.2, 0.45))
    jy = 0.05 if rng.random() < 0.1 else 0.012
    out: list[Glyph] = []
    for ch, lab in zip(chars, labels):
        g = make_glyph(ch, st, lab)
        if g is None:
            continue
        if out:
            gap = (g0 + rng.normal(0, 0.02)) * R
            g.x = int(round(out[-1].nbox()[2] + gap - g.box[0]))
        else:
            g.x = -g.box[0]
        g.y = int(round(g.y + rng.normal(0, jy) * R))
        out.append(g)
    return out


def affine(rng: np.random.Generator) -> np.ndarray:
    sd = 4.0 if rng.random() < 0.85 else 9.0
    a = np.deg2rad(np.clip(rng.normal(0, sd), -15, 15))
    sh = float(np.clip(rng.normal(0, 0.06), -0.3, 0.3))
    ys = float(np.exp(rng.normal(0, 0.05)))
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return rot @ np.array([[1, sh, 0], [0, ys, 0], [0, 0, 1]])


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:3]


def translate(x: float, y: float) -> np.ndarray:
    return np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], dtype=np.float64)


def pil_coeffs(M: np.ndarray) -> tuple:
    M = M / M[2, 2]
    return tuple(M.ravel()[:8])


def composite(P: np.ndarray, A: np.ndarray, alpha: np.ndarray, col, x: int, y: int) -> None:
    """Premultiplied 'over' of one layer (alpha patch at canvas x, y) onto P (h, w, 3), A (h, w)."""
    h, w = alpha.shape
    H, W = A.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
    if np.ndim(col) == 1:
        c = col
    elif col.shape[1] == 1:  # vertical gradient (h, 1, 3)
        c = col[y0 - y:y1 - y]
    else:
        c = col[y0 - y:y1 - y, x0 - x:x1 - x]
    a3 = a[..., None]
    P[y0:y1, x0:x1] = c * a3 + P[y0:y1, x0:x1] * (1 - a3)
    A[y0:y1, x0:x1] = a + A[y0:y1, x0:x1] * (1 - a)


def text_patch(font_path: str, size: int, text: str) -> Glyph | None:
    font = sty.get_font(font_path, max(5, size))
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    if right - left < 2:
        return None
    im = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(im).text((1 - left, 1 - top), text, font=font, fill=255, anchor="ls")
    a = np.asarray(im, np.float32) / 255.0
    box = tight_box(a)
    return None if box is None else Glyph(None, left - 1, top - 1, a, [(a, None)], box, text=True)
