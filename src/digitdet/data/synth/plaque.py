"""House-number plaques for the synthetic `plaque` and `scene` modes: numerals, plates, screws, metal.

A plaque is a number (serif, sans or thin modern numerals; flat, brushed metal or raised 3-D with a cast
shadow), often a street or house name in smaller letters above or below it, on a plate (flat colour,
brushed steel/brass, painted wood or slate, sometimes none: numerals straight on the cladding), with
screws, a border, the plate's own edge and shadow. Everything is in plane coordinates at render scale
(digit height about R); compose turns it into an image with boxes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import (
    brushed,
    canvas_for,
    finish,
    first_draw,
    house_wall,
    plane_h,
    text_line,
    warped_boxes,
    words,
)
from digitdet.data.synth.render import (
    Glyph,
    Sample,
    Style,
    apply_h,
    composite,
    make_glyph,
    number_chars,
    translate,
)

THIN = ("Thin", "ExtraLight", "Light")
METALS = ((0.78, 0.78, 0.80), (0.62, 0.63, 0.66), (0.80, 0.64, 0.32), (0.72, 0.45, 0.30), (0.30, 0.30, 0.32))


@lru_cache(maxsize=1)
def _font_groups() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(thin/light modern sans, serif, other upright) font files among style.font_files()."""
    thin, serif, other = [], [], []
    for f in sty.font_files():
        name = os.path.basename(f)
        if "Italic" in name or "Oblique" in name or "Ita" in name:
            continue
        if any(t in name for t in THIN):
            thin.append(f)
        elif name.startswith(("Caladea", "DejaVuSerif", "STIX")):
            serif.append(f)
        else:
            other.append(f)
    return tuple(thin), tuple(serif), tuple(other)


@cache
def stem_px(font: str) -> float:
    """Width of the stem of the font's '1' at size 100 (px): how thin its strokes are."""
    m = sty.get_font(font, 100).getmask("1")
    a = np.asarray(m).reshape(m.size[1], m.size[0]) > 127
    return float(max(1, a[a.shape[0] // 2].sum()))


def plaque_font(rng: np.random.Generator) -> str:
    """Mostly thin/light modern sans (Lato, Roboto, Manrope light weights), else serif or any upright."""
    thin, serif, other = _font_groups()
    u = rng.random()
    group = (thin if u < 0.4 else serif if u < 0.65 else other) or other or thin or serif
    return group[int(rng.integers(len(group)))]


@dataclass
class Look:
    plate: str  # "flat" | "brushed" | "texture" | "none" (numerals straight on the wall)
    plate_col: np.ndarray
    num_col: np.ndarray
    wall_col: np.ndarray
    num_finish: str  # "flat" | "brushed" | "gradient"
    raised: bool


def _jit(rng, c, sd: float = 0.04) -> np.ndarray:
    return np.clip(np.asarray(c, np.float32) + rng.normal(0, sd, 3), 0, 1).astype(np.float32)


def sample_look(rng: np.random.Generator, plate_p: float = 0.8) -> Look:
    """Colours and finishes of one plaque: light-on-dark, dark-on-light, metal, or numerals on cladding."""
    metal = lambda: _jit(rng, METALS[int(rng.integers(len(METALS)))], 0.03)  # noqa: E731
    if rng.random() >= plate_p:  # numerals on the cladding: mostly dark on light, else light on dark
        if rng.random() < 0.7:
            wall = sty.color_with_lum(rng, float(rng.uniform(0.55, 0.95)))
            num = metal() * 0.35 if rng.random() < 0.4 else sty.color_with_lum(rng, float(rng.uniform(0.02, 0.2)))
        else:
            wall = sty.color_with_lum(rng, float(rng.uniform(0.05, 0.35)))
            num = metal() if rng.random() < 0.6 else sty.color_with_lum(rng, float(rng.uniform(0.75, 0.97)))
        return Look("none", wall, num, wall, "brushed" if rng.random() < 0.25 else "flat", rng.random() < 0.7)
    wall = sty.color_with_lum(rng, float(rng.uniform(0.1, 0.9)))
    u = rng.random()
    metal_num = False
    if u < 0.35:  # dark plate, light or metal numerals
        plate = sty.color_with_lum(rng, float(rng.uniform(0.02, 0.22)), sat=float(rng.uniform(0, 0.5)))
        metal_num = rng.random() < 0.45
        num = metal() if metal_num else sty.color_with_lum(rng, float(rng.uniform(0.8, 0.97)), sat=0.05)
        kind = "texture" if rng.random() < 0.15 else "flat"
    elif u < 0.65:  # light plate, dark numerals
        plate = sty.color_with_lum(rng, float(rng.uniform(0.7, 0.97)), sat=float(rng.uniform(0, 0.2)))
        num = sty.color_with_lum(rng, float(rng.uniform(0.02, 0.25)), sat=float(rng.uniform(0, 0.6)))
        kind = "texture" if rng.random() < 0.15 else "flat"
    else:  # brushed metal plate, dark numerals
        plate = metal()
        num = sty.color_with_lum(rng, float(rng.uniform(0.02, 0.15)))
        kind = "brushed"
    finish = "brushed" if metal_num and rng.random() < 0.6 else "gradient" if rng.random() < 0.15 else "flat"
    return Look(kind, plate, num, wall, finish, rng.random() < 0.45)


def number_style(rng: np.random.Generator, R: float, look: Look, font: str) -> Style:
    hr, wr = sty.font_metrics(font)
    st = Style(font=font, size=max(6, 2 * int(round(R / hr / 2))),
               sx=float(np.clip(0.6 / wr * np.exp(rng.normal(0, 0.1)), 0.7, 1.3)), fill=look.num_col)
    stem = stem_px(font) * st.size / 100 * min(1.0, st.sx)
    if stem < 2.5:  # thicken hairlines (thin weights, small sizes) so no stroke falls apart when warped
        st.stroke = int(np.ceil((2.5 - stem) / 2))
    if look.raised:  # light from above-left: side faces and a cast shadow down-right
        n = max(1, int(round(R * rng.uniform(0.04, 0.1))))
        ang = rng.uniform(0.3, 1.3)
        dx, dy = int(round(n * np.cos(ang) * (1 if rng.random() < 0.7 else -1))), int(round(n * np.sin(ang)))
        st.ext = (dx, dy, n)
        st.ext_col = np.clip(look.num_col * rng.uniform(0.3, 0.6), 0, 1).astype(np.float32)
        k = rng.uniform(1.3, 3.0)
        st.shadow = (int(round(dx * k)), int(round(dy * k)) or 1, R * rng.uniform(0.02, 0.08),
                     float(rng.uniform(0.45, 0.8)))
    elif rng.random() < 0.15:  # painted with a faint shadow
        d = max(1, int(round(R * rng.uniform(0.02, 0.05))))
        st.shadow = (d, d, R * 0.04, float(rng.uniform(0.2, 0.4)))
    if look.num_finish == "gradient":
        st.fill2 = np.clip(look.num_col * rng.uniform(0.5, 0.8), 0, 1).astype(np.float32)
    return st


def number_glyphs(rng: np.random.Generator, st: Style, R: float, digits: list[int] | None = None) -> list[Glyph]:
    """The house number laid out left to right from x = 0, baseline y = 0, wider spacing than SVHN crops;
    sometimes a letter suffix (a lookalike, never a digit box). Brushed numerals get a metal texture."""
    chars, labels = number_chars(rng, digits, p_letter=0.06)
    gap = R * rng.uniform(-0.02, 0.35)
    out: list[Glyph] = []
    for ch, lab in zip(chars, labels):
        g = make_glyph(ch, st, lab)
        if g is None:
            continue
        g.x = int(round(out[-1].nbox()[2] + gap - g.box[0])) if out else -g.box[0]
        out.append(g)
    return out


def brush_numerals(rng: np.random.Generator, glyphs: list[Glyph], col, R: float) -> None:
    for g in glyphs:
        alpha, _ = g.layers[-1]
        g.layers[-1] = (alpha, brushed(rng, alpha.shape[0], alpha.shape[1], col * 1.1, R))


def text_lines(rng: np.random.Generator, nb: tuple, R: float, font: str, col, p: float = 0.5) -> list[Glyph]:
    """Sometimes a street or house name in smaller letters under (mostly) or above the number."""
    if rng.random() >= p:
        return []
    hr, _ = sty.font_metrics(font)
    size = max(5, int(round(R * rng.uniform(0.2, 0.4) / hr)))
    width = nb[2] - nb[0]
    g = None
    for n in (int(rng.integers(1, 4)), 1):
        g = text_line(rng, font, size, words(rng, n), col)
        if g is not None and g.box[2] - g.box[0] <= max(2.2 * width, 3 * R):
            break
    if g is None:
        return []
    gap = R * rng.uniform(0.15, 0.4)
    below = rng.random() < 0.7
    g.y = int(round(nb[3] + gap - g.box[1])) if below else int(round(nb[1] - gap - g.box[3]))
    left = rng.random() < 0.25
    g.x = int(round(nb[0] - g.box[0])) if left else int(round((nb[0] + nb[2] - g.box[0] - g.box[2]) / 2))
    return [g]


def union_box(glyphs: list[Glyph]) -> tuple[float, float, float, float]:
    b = np.array([g.nbox() for g in glyphs], dtype=np.float64)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def plate_box(rng: np.random.Generator, content: tuple, R: float) -> tuple[float, float, float, float]:
    mx, my = R * rng.uniform(0.2, 0.7), R * rng.uniform(0.15, 0.45)
    return content[0] - mx, content[1] - my, content[2] + mx, content[3] + my


def _shape(size: tuple[int, int], box: tuple, kind: str, rad: float) -> np.ndarray:
    m = Image.new("L", size, 0)
    d = ImageDraw.Draw(m)
    if box[2] > box[0] + 1 and box[3] > box[1] + 1:
        if kind == "oval":
            d.ellipse(box, fill=255)
        else:
            d.rounded_rectangle(box, radius=max(0.0, rad), fill=255)
    return np.asarray(m, np.float32) / 255.0


def _shift(a: np.ndarray, d: int) -> np.ndarray:
    """a moved d px down and right (no wrap-around)."""
    out = np.zeros_like(a)
    out[d:, d:] = a[:a.shape[0] - d, :a.shape[1] - d]
    return out


def draw_plaque(rng: np.random.Generator, P: np.ndarray, A: np.ndarray, origin: tuple[int, int], pb: tuple,
                R: float, look: Look, avoid: tuple) -> None:
    """The plate of box `pb` (plane coords) onto the canvas whose top-left is plane `origin`: its shadow on
    the wall, its edge, body, border and screws (kept off the `avoid` box: number and text)."""
    if look.plate == "none":
        return
    m = 0.5 * R  # room for the plate's shadow; everything is drawn in this window of the canvas only
    lx0, ly0 = max(0, int(pb[0] - origin[0] - m)), max(0, int(pb[1] - origin[1] - m))
    lx1, ly1 = min(A.shape[1], int(pb[2] - origin[0] + m)), min(A.shape[0], int(pb[3] - origin[1] + m))
    if lx0 >= lx1 or ly0 >= ly1:
        return
    P, A = P[ly0:ly1, lx0:lx1], A[ly0:ly1, lx0:lx1]  # views: drawing on them draws on the canvas
    h, w = A.shape
    ox, oy = origin[0] + lx0, origin[1] + ly0
    box = (pb[0] - ox, pb[1] - oy, pb[2] - ox, pb[3] - oy)
    kind = "oval" if rng.random() < 0.08 else "rect"
    rad = float(rng.uniform(0, 0.3) * min(box[2] - box[0], box[3] - box[1])) if rng.random() < 0.6 else 0.0
    body = _shape((w, h), box, kind, rad)
    if rng.random() < 0.6:  # the plate's shadow on the wall
        d = max(1, int(round(R * rng.uniform(0.03, 0.15))))
        sh = Image.fromarray((_shift(body, d) * 255).astype(np.uint8))
        sh = np.asarray(sh.filter(ImageFilter.GaussianBlur(R * rng.uniform(0.03, 0.1))), np.float32) / 255.0
        composite(P, A, sh * rng.uniform(0.3, 0.6), np.zeros(3, np.float32), 0, 0)
    if rng.random() < 0.5:  # the plate's thickness: an edge below / right
        t = max(1, int(round(R * rng.uniform(0.02, 0.06))))
        composite(P, A, _shift(body, t), np.clip(look.plate_col * 0.55, 0, 1), 0, 0)
    if look.plate == "brushed":
        col = brushed(rng, h, w, look.plate_col, R, vertical=rng.random() < 0.15)
    elif look.plate == "texture":  # painted wood or render
        col = sty.background(rng, h, w, look.plate_col, R, p=(0.0, 0.0, 0.6, 0.0, 0.4, 0.0))
    else:
        col = look.plate_col * (1 + (sty.lowfreq(rng, h, w, 2) - 0.5) * rng.uniform(0, 0.15))[..., None]
    composite(P, A, body, np.clip(col, 0, 1).astype(np.float32), 0, 0)
    if rng.random() < 0.35:  # a border line inset
        ins = R * rng.uniform(0.06, 0.2)
        inner = _shape((w, h), (box[0] + ins, box[1] + ins, box[2] - ins, box[3] - ins), kind, rad - ins)
        wd = max(1.0, R * rng.uniform(0.02, 0.06))
        rim = np.clip(inner - _shape((w, h), (box[0] + ins + wd, box[1] + ins + wd, box[2] - ins - wd,
                                             box[3] - ins - wd), kind, rad - ins - wd), 0, 1)
        composite(P, A, rim, look.num_col, 0, 0)
    if rng.random() < 0.5 and kind == "rect":
        _screws(rng, P, A, box, R, (avoid[0] - ox, avoid[1] - oy, avoid[2] - ox, avoid[3] - oy), look)


def _screws(rng, P, A, box, R: float, avoid, look: Look) -> None:
    h, w = A.shape
    r = max(1.2, R * rng.uniform(0.04, 0.08))
    ins = max(r * 1.6, R * rng.uniform(0.1, 0.22))
    x0, y0, x1, y1 = box[0] + ins, box[1] + ins, box[2] - ins, box[3] - ins
    spots = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)] if rng.random() < 0.6 else [(x0, (y0 + y1) / 2),
                                                                                (x1, (y0 + y1) / 2)]
    base = np.asarray(METALS[int(rng.integers(3))], np.float32) if rng.random() < 0.7 else look.num_col
    disk, slot, hi = (Image.new("L", (w, h), 0) for _ in range(3))
    dd, ds, dh = ImageDraw.Draw(disk), ImageDraw.Draw(slot), ImageDraw.Draw(hi)
    for x, y in spots:
        if avoid[0] - r < x < avoid[2] + r and avoid[1] - r < y < avoid[3] + r:
            continue
        dd.ellipse((x - r, y - r, x + r, y + r), fill=255)
        a = rng.uniform(0, np.pi)
        ds.line((x - r * np.cos(a), y - r * np.sin(a), x + r * np.cos(a), y + r * np.sin(a)),
                fill=255, width=max(1, int(r * 0.35)))
        dh.ellipse((x - r * 0.7, y - r * 0.7, x, y), fill=255)
    for m, c in ((disk, base * 0.75), (hi, np.clip(base * 1.3, 0, 1)), (slot, base * 0.25)):
        composite(P, A, np.asarray(m, np.float32) / 255.0, c.astype(np.float32), 0, 0)


def render_plaque(rng: np.random.Generator) -> Sample:
    """A house-number plaque filling much of the frame (digits 25-70 % of the image height, short side
    ~56-240 px, long side <= 320), sometimes seen at up to 45 degrees."""
    return first_draw(_plaque_once, rng, "plaque")


def camera_angles(rng: np.random.Generator, strong_p: float, strong_max: float) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees: now and then a strong turn about the vertical axis."""
    if rng.random() < strong_p:
        yaw = float(rng.uniform(15, strong_max) * rng.choice([-1, 1]))
    else:
        yaw = float(np.clip(rng.normal(0, 6), -15, 15))
    return yaw, float(np.clip(rng.normal(0, 6), -18, 18)), float(np.clip(rng.normal(0, 2.5), -8, 8))


def _plaque_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    short = float(np.exp(rng.uniform(np.log(56), np.log(240))))
    frac = float(rng.uniform(0.25, 0.7))
    R = float(np.clip(frac * short * rng.uniform(0.9, 1.15), 24, 64))
    look = sample_look(rng)
    font = plaque_font(rng)
    number = number_glyphs(rng, number_style(rng, R, look, font), R)
    digits = [g for g in number if g.label is not None]
    if not digits:
        return None
    if look.num_finish == "brushed":
        brush_numerals(rng, number, look.num_col, R)
    nb = union_box(number)
    text = text_lines(rng, nb, R, font if rng.random() < 0.6 else plaque_font(rng), look.num_col)
    content = union_box(number + text)
    pb = plate_box(rng, content, R) if look.plate != "none" else content

    angles = camera_angles(rng, 0.35, 45)
    return frame_plaque(rng, number=number, text=text, look=look, pb=pb, content=content, R=R, frac=frac,
                        short=short, angles=angles, strict=strict)


def frame_plaque(rng: np.random.Generator, *, number: list[Glyph], text: list[Glyph], look: Look, pb: tuple,
                 content: tuple, R: float, frac: float, short: float, angles: tuple[float, float, float],
                 strict: bool) -> Sample | None:
    """The plaque `pb` (plate box, plane coords) with `number` and `text` seen from `angles` (yaw, pitch,
    roll in degrees), framed so the digits are about `frac` of the image height (short side ~`short` px),
    on a house wall; finished with the box rule (compose.finish)."""
    yaw, pitch, roll = angles
    dist = max(pb[2] - pb[0], pb[3] - pb[1]) * rng.uniform(1.3, 3.5)
    H0 = plane_h(yaw, pitch, roll, dist) @ translate(-(pb[0] + pb[2]) / 2, -(pb[1] + pb[3]) / 2)
    wb = warped_boxes(number, H0)
    dh = float(np.median([b[3] - b[1] for b, g in zip(wb, number) if g.label is not None]))
    ex0, ey0, ex1, ey1 = wb[:, 0].min(), wb[:, 1].min(), wb[:, 2].max(), wb[:, 3].max()
    pc = apply_h(H0, np.array([[pb[0], pb[1]], [pb[2], pb[1]], [pb[2], pb[3]], [pb[0], pb[3]]]))
    m = 0.06 * dh
    Hc = max(dh / frac, (ey1 - ey0) + 2 * m + 2)
    Wc = float(np.clip((pc[:, 0].max() - pc[:, 0].min()) * rng.uniform(0.95, 1.45), 0.75 * Hc, 2.8 * Hc))
    Wc = max(Wc, ex1 - ex0 + 2 * m + 2)
    Wc, Hc = int(np.ceil(Wc)), int(np.ceil(Hc))
    cx, cy = pc.mean(0) + rng.normal(0, 0.08, 2) * (Wc, Hc)
    x0 = float(np.clip(cx - Wc / 2, ex1 + m - Wc, ex0 - m))
    y0 = float(np.clip(cy - Hc / 2, ey1 + m - Hc, ey0 - m))
    H = translate(-x0, -y0) @ H0
    s = min(short / min(Wc, Hc), 320 / max(Wc, Hc))
    final = max(8, round(Wc * s)), max(8, round(Hc * s))

    cb = canvas_for(H, (Wc, Hc), pb, 12 * R)
    origin = cb[0], cb[1]
    P0 = house_wall(rng, cb[3] - cb[1], cb[2] - cb[0], look.wall_col, R)
    sty.add_structures(rng, P0, R, (pb[0] - origin[0] - 0.3 * R, pb[1] - origin[1] - 0.3 * R,
                                    pb[2] - origin[0] + 0.3 * R, pb[3] - origin[1] + 0.3 * R))
    A0 = np.ones(P0.shape[:2], np.float32)
    draw_plaque(rng, P0, A0, origin, pb, R, look, content)
    for g in text:
        for alpha, col in g.layers:
            composite(P0, A0, alpha, col, g.x - origin[0], g.y - origin[1])
    back = np.empty((Hc, Wc, 3), np.float32)
    back[:] = look.wall_col
    return finish(rng, number=number, P0=P0, A0=A0, origin=origin, H=H, size=(Wc, Hc), back=back, final=final,
                  R=R, h_final=dh * s, strict=strict)
