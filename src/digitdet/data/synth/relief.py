"""The synthetic `relief` and `cut` modes: 3-D house numbers in steep views, and tight crops of them.

    relief  a plaque (or numerals straight on the wall) whose digits are extruded (deep side faces shaded
            away from the light), embossed (the plate's own material, raised: only the bevel's light and
            shade and a slight tint tell it) or brushed metal with a bevel, each casting a soft shadow on
            the plate or wall; seen at up to MAX_TILT degrees of yaw, pitch and in-plane rotation, often
            through a poor camera (lens)
    cut     a tight crop of such a number (digits 60-95 % of the crop height before the turn): the first
            or last digit cut by the crop edge (boxed only when >= 50 % of its ink shows, never 30-70 %;
            a cut digit showing 15-50 % is a lookalike), the top or bottom of every digit shaved a little,
            the crop resized to a square or another aspect ratio, and the camera's faults

Both target what the bundled reader misreads in real photos: the first or last digit dropped on extruded
or brushed-metal digits, steep perspective and rotation, digits cut by the crop edge, crops stretched to
squares. Boxes follow compose.finish (tight boxes of final-resolution masks of the warped ink; the
extrusion is ink, the cast shadow is not), and a letter after the number ("12A") stays a lookalike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image, ImageFilter

from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import (
    brushed,
    canvas_for,
    cut_borders,
    finish,
    first_draw,
    house_wall,
    plane_h,
    warped_boxes,
)
from digitdet.data.synth.lens import lens, stroke_width
from digitdet.data.synth.plaque import (
    METALS,
    Look,
    brush_numerals,
    draw_plaque,
    frame_plaque,
    number_glyphs,
    number_style,
    plaque_font,
    plate_box,
    sample_look,
    text_lines,
    union_box,
)
from digitdet.data.synth.render import Glyph, Sample, tight_box, translate

MIN_VISIBILITY = 0.1  # compose.finish's visibility below which no camera fault is added: redraw
MAX_TILT = 35.0  # degrees: the most yaw, pitch or roll of the relief and cut modes' camera
FINISHES = ("extruded", "embossed", "brushed")


def steep_angles(rng: np.random.Generator) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, each within +-MAX_TILT: often a strong turn or an in-plane rotation."""
    sign = lambda: float(rng.choice([-1.0, 1.0]))  # noqa: E731
    yaw = rng.uniform(15, MAX_TILT) * sign() if rng.random() < 0.45 else rng.normal(0, 8)
    pitch = rng.uniform(10, 25) * sign() if rng.random() < 0.25 else rng.normal(0, 6)
    roll = rng.uniform(8, MAX_TILT) * sign() if rng.random() < 0.4 else rng.normal(0, 3)
    return tuple(float(np.clip(a, -MAX_TILT, MAX_TILT)) for a in (yaw, pitch, roll))


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """a moved by (dx, dy) px; the patch is padded enough that nothing wraps around."""
    return np.roll(a, (dy, dx), (0, 1))


def _blur(a: np.ndarray, radius: float) -> np.ndarray:
    im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(max(0.3, radius))), np.float32) / 255.0


def _bevel(face: np.ndarray, light: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """(lit, shaded) alphas of a rounded edge inside the face: the side toward `light` (a unit vector in
    patch x, y) catches it, the other side is in shade. Inside the face only, so the ink box is unchanged."""
    b = _blur(face, width)
    gy, gx = np.gradient(b)
    d = (gx * light[0] + gy * light[1]) * (2.5 * width)  # the blurred step's slope is ~1 / (2.5 width)
    return np.clip(-d, 0, 1) * face, np.clip(d, 0, 1) * face


def relief_number(rng: np.random.Generator, number: list[Glyph], look: Look, R: float, kind: str) -> None:
    """Restyle the laid-out glyphs in place as `kind` (FINISHES) lit from one side, with a cast shadow.

    Each glyph keeps its place: its patch grows by a margin (x, y move back by it); its ink becomes
    face + extrusion (what the box rule boxes), the shadow is a layer outside the ink."""
    ang = rng.uniform(-np.pi, 0) if rng.random() < 0.85 else rng.uniform(0, np.pi)  # mostly from above
    light = np.array([np.cos(ang), np.sin(ang)])
    depth = int(round(R * rng.uniform(0.06, 0.16))) if kind == "extruded" else 0
    ed = -light + rng.normal(0, 0.35, 2)  # side faces show away from the light, give or take the view
    ed = ed / max(np.hypot(*ed), 1e-6)
    stand = R * rng.uniform(0.03, 0.15)  # how far the shadow falls beyond the side faces
    sblur, sop = R * rng.uniform(0.03, 0.1), float(rng.uniform(0.3, 0.65))
    if rng.random() < 0.2:  # numerals on spacers: the shadow falls far, softer and fainter
        stand, sblur, sop = R * rng.uniform(0.15, 0.3), sblur * 2, sop * 0.7
    sdx, sdy = (int(round(v)) for v in -light * (stand + depth))
    bevel_w = R * rng.uniform(0.025, 0.06)
    base = look.plate_col if look.plate != "none" else look.wall_col
    if kind == "embossed":  # the plate's own material, raised a little and tinted
        d = rng.uniform(0.2, 0.4) * (1 if sty.lum(base) < 0.5 else -1)
        col = np.clip(base * (1 + d) + d * 0.3, 0, 1).astype(np.float32)
    elif kind == "brushed":
        col = np.clip(np.asarray(METALS[int(rng.integers(len(METALS)))], np.float32) + rng.normal(0, 0.03, 3), 0, 1)
    else:
        col = np.asarray(look.num_col, np.float32)
    side = np.clip(col * rng.uniform(0.3, 0.6), 0, 1).astype(np.float32)
    lit_col = np.clip(col * 1.3 + 0.25, 0, 1).astype(np.float32)
    for g in number:
        pad = depth + max(abs(sdx), abs(sdy)) + int(3 * sblur) + 3
        face = np.pad(g.ink, pad)
        ext = np.zeros_like(face)
        layers = []
        steps = []
        for i in range(depth, 0, -1):  # far to near: the nearer steps are lighter (shading across the depth)
            s = _shift(face, int(round(i * ed[0])), int(round(i * ed[1])))
            ext = np.maximum(ext, s)
            steps.append((s, np.clip(side * (0.7 + 0.5 * (1 - i / max(depth, 1))), 0, 1).astype(np.float32)))
        ink = np.maximum(face, ext)
        layers.append((_blur(_shift(ink, sdx, sdy), sblur) * sop, np.zeros(3, np.float32)))
        layers += steps
        fcol = brushed(rng, face.shape[0], face.shape[1], col, R) if kind == "brushed" else col
        layers.append((face, fcol))
        lit, shade = _bevel(face, light, bevel_w)
        k = 0.9 if kind == "embossed" else 0.6
        layers += [(lit * k, lit_col), (shade * k, np.zeros(3, np.float32))]
        box = tight_box(ink)
        if box is None:  # pragma: no cover - the glyph had ink before, padding keeps it
            continue
        g.ink, g.layers, g.box, g.x, g.y = ink, layers, box, g.x - pad, g.y - pad


def _number(rng: np.random.Generator, R: float, look: Look, styled_p: float) -> tuple[list[Glyph], str]:
    """The number's glyphs in the plaque fonts, restyled as a relief finish with chance styled_p."""
    font = plaque_font(rng) if rng.random() < 0.6 else sty.pick_font(rng)
    st = number_style(rng, R, look, font)
    st.ext, st.shadow, st.fill2 = None, None, None  # relief_number draws its own depth and shadow
    number = number_glyphs(rng, st, R)
    kind = FINISHES[int(rng.integers(len(FINISHES)))] if rng.random() < styled_p else "flat"
    if kind != "flat" and any(g.label is not None for g in number):
        relief_number(rng, number, look, R, kind)
    elif look.num_finish == "brushed":
        brush_numerals(rng, number, look.num_col, R)
    return number, font


def through_lens(rng: np.random.Generator, s: Sample | None, p: float) -> Sample | None:
    """The finished sample through lens (digit height: the median box height, blur bounded by the stroke
    width of their masks); None when its faintest digit is already faint (a camera fault on top would
    leave a box on a digit nobody could read)."""
    if s is None or s.visibility < MIN_VISIBILITY:
        return None
    h = float(np.median([b[3] - b[1] for b in s.boxes]))
    return replace(s, image=lens(rng, s.image, h, s.visibility, p, stroke_width(s.masks)))


# ---------------------------------------------------------------- relief


def render_relief(rng: np.random.Generator) -> Sample:
    """A 3-D (extruded, embossed, brushed-metal) house number with a cast shadow, seen at up to 35 deg."""
    return first_draw(_relief_once, rng, "relief")


def _relief_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    short = float(np.exp(rng.uniform(np.log(64), np.log(260))))
    frac = float(rng.uniform(0.25, 0.65))
    R = float(np.clip(frac * short * rng.uniform(0.9, 1.15), 28, 64))
    look = sample_look(rng, plate_p=0.65)
    number, font = _number(rng, R, look, styled_p=1.0)
    if not any(g.label is not None for g in number):
        return None
    nb = union_box(number)
    text = text_lines(rng, nb, R, font, look.num_col, p=0.3)
    content = union_box(number + text)
    pb = plate_box(rng, content, R) if look.plate != "none" else content
    s = frame_plaque(rng, number=number, text=text, look=look, pb=pb, content=content, R=R, frac=frac,
                     short=short, angles=steep_angles(rng), strict=strict)
    return through_lens(rng, s, 0.6)


# ---------------------------------------------------------------- cut


def render_cut(rng: np.random.Generator) -> Sample:
    """A tight crop of a house number: cut digits at either edge, steep views, squashed, camera faults."""
    return first_draw(_cut_once, rng, "cut")


def final_size(rng: np.random.Generator, height: float, crop_aspect: float) -> tuple[int, int] | None:
    """(W, H) of a tight crop as real ones are stored: often a square, else any width / height in 0.5-2.5,
    whatever the crop's own `crop_aspect` (W / H), stretching it by 0.45-2.2; long side <= 320. None when
    it would be under 24 px high."""
    aspect = 1.0 if rng.random() < 0.45 else float(np.exp(rng.uniform(np.log(0.5), np.log(2.5))))
    aspect = crop_aspect * float(np.clip(aspect / crop_aspect, 0.45, 2.2))
    k = min(1.0, 320 / max(height, height * aspect))
    Wf, Hf = round(height * aspect * k), round(height * k)
    return None if Hf < 24 or Wf < 12 else (Wf, Hf)


def _cut_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    height = float(np.exp(rng.uniform(np.log(40), np.log(200))))  # final image height
    frac = float(rng.uniform(0.6, 0.95))
    R = float(np.clip(frac * height * rng.uniform(0.9, 1.2), 24, 56))
    look = sample_look(rng, plate_p=0.6)
    number, _ = _number(rng, R, look, styled_p=0.6)
    is_digit = np.array([g.label is not None for g in number])
    if not is_digit.any():
        return None
    nb = union_box(number)
    yaw, pitch, roll = steep_angles(rng)
    dist = max(nb[2] - nb[0], nb[3] - nb[1]) * rng.uniform(1.5, 4.0)
    H0 = plane_h(yaw, pitch, roll, dist) @ translate(-(nb[0] + nb[2]) / 2, -(nb[1] + nb[3]) / 2)
    wb = warped_boxes(number, H0)
    dh = float(np.median((wb[:, 3] - wb[:, 1])[is_digit]))
    # Top and bottom: a little margin, or the crop shaving up to 8 % off every digit (all still boxed).
    y0 = wb[:, 1].min() - rng.uniform(-0.08, 0.2) * dh * frac
    y1 = wb[:, 3].max() + rng.uniform(-0.08, 0.2) * dh * frac
    x0, x1 = cut_borders(rng, number, H0, wb, dh, p_cut=0.4, low=(0.15, 0.3), p_low=0.4)
    Wc, Hc = max(2, int(np.ceil(x1 - x0))), max(2, int(np.ceil(y1 - y0)))
    final = final_size(rng, height, Wc / Hc)
    if final is None:
        return None
    H = translate(-x0, -y0) @ H0
    pb = plate_box(rng, nb, R) if look.plate != "none" else nb
    cb = canvas_for(H, (Wc, Hc), pb, 8 * R)
    origin = cb[0], cb[1]
    P0 = house_wall(rng, cb[3] - cb[1], cb[2] - cb[0], look.wall_col, R)
    A0 = np.ones(P0.shape[:2], np.float32)
    draw_plaque(rng, P0, A0, origin, pb, R, look, nb)
    back = np.empty((Hc, Wc, 3), np.float32)
    back[:] = look.wall_col
    s = finish(rng, number=number, P0=P0, A0=A0, origin=origin, H=H, size=(Wc, Hc), back=back, final=final,
               R=R, h_final=dh * final[1] / Hc, strict=strict, cut_lookalikes=True)
    return through_lens(rng, s, 0.8)
