"""A phone camera's faults for the relief, cut and sign modes: defocus, motion blur, low contrast, glare, and
heavy JPEG, applied to the finished image (the boxes come from the ink masks, which no photometric fault
moves, so the box rule holds).

Real tight crops and sign photos the bundled reader misread were soft, smeared, flat or had a bright
reflection across the plate; the older modes' `degrade` stops at mild blur and JPEG quality 20-90. Each
fault is bounded by the digits' own visibility (compose.finish measures it), so a digit is never washed
out of the picture while its box stays in the truth.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

GLARE_MAX = 0.6  # most of a glare's blend toward white, at its centre
VISIBLE_AFTER = 0.08  # least mean luminance change a digit keeps after low contrast and glare
# Blur is bounded by the digits' stroke width too, not their height alone: a thin font blurred by 7 % of
# its height lost its strokes (cut-mode test images nobody could read, with their digits still boxed).
# Either cap keeps about 2/3 of a stroke's contrast through the blur (a bar of width w: erf(1 / sqrt 2)
# under a Gaussian of sigma w / 2; w / L under a smear of length L = 1.5 w).
DEFOCUS_MAX_STROKE = 0.5
SMEAR_MAX_STROKE = 1.5


def stroke_width(masks: list[np.ndarray]) -> float | None:
    """The digits' median stroke width in px, from their ink masks: 2 x area / boundary pixels (a stroke
    of width w and length L has area w L and 2 L boundary pixels). None without ink."""
    widths = []
    for m in masks:
        m = np.asarray(m, bool)
        if not m.any():
            continue
        inner = m.copy()
        inner[1:, :] &= m[:-1, :]
        inner[:-1, :] &= m[1:, :]
        inner[:, 1:] &= m[:, :-1]
        inner[:, :-1] &= m[:, 1:]
        inner[[0, -1], :] = False
        inner[:, [0, -1]] = False
        widths.append(2.0 * m.sum() / max(1, int((m & ~inner).sum())))
    return float(np.median(widths)) if widths else None


def motion_blur(a: np.ndarray, length: float, angle: float) -> np.ndarray:
    """(h, w, 3) float image smeared along `angle` (radians) over `length` px: the mean of shifted copies
    (edges repeated, so nothing dark creeps in from outside)."""
    n = max(2, int(round(length)))
    h, w = a.shape[:2]
    pad = n + 1
    big = np.pad(a, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros_like(a)
    for t in np.linspace(-length / 2, length / 2, n):
        dx, dy = int(round(t * np.cos(angle))), int(round(t * np.sin(angle)))
        out += big[pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    return out / n


def glare(rng: np.random.Generator, a: np.ndarray, strength: float) -> np.ndarray:
    """A soft bright reflection (an elongated blob or a band) blended toward white by at most `strength`."""
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    ang = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    side = max(h, w)
    su, sv = side * rng.uniform(0.1, 0.6), side * rng.uniform(0.04, 0.2)
    if rng.random() < 0.35:  # a band across the whole plate (a window's reflection)
        su = side * 10
    m = np.exp(-(u / su) ** 2 - (v / sv) ** 2) * strength
    tint = np.clip(np.array([1.0, 0.98, 0.92], np.float32) + rng.normal(0, 0.03, 3), 0, 1).astype(np.float32)
    return a * (1 - m[..., None]) + tint * m[..., None]


def lens(rng: np.random.Generator, im: Image.Image, digit_h: float, visibility: float,
         p: float = 1.0, stroke: float | None = None) -> Image.Image:
    """The image through a poor camera: each fault with its own chance (scaled by `p`); `digit_h` the
    digits' height in px (blur lengths follow it, up to DEFOCUS_MAX_STROKE / SMEAR_MAX_STROKE of
    `stroke`, their stroke width in px, when given), `visibility` compose.finish's measure of the faintest
    digit (low contrast and glare keep at least VISIBLE_AFTER of it)."""
    defocus_cap = DEFOCUS_MAX_STROKE * stroke if stroke else float("inf")
    smear_cap = SMEAR_MAX_STROKE * stroke if stroke else float("inf")
    a = np.asarray(im, np.float32) / 255.0
    need = VISIBLE_AFTER / max(visibility, 1e-3)  # the least share of its contrast the faintest digit keeps
    if rng.random() < 0.35 * p:  # low contrast: haze, a flat overcast light, a dirty plate
        c = float(rng.uniform(max(0.4, need), 0.8)) if need < 0.8 else 1.0
        mean = a.mean((0, 1), keepdims=True)
        a = (a - mean) * c + mean + rng.uniform(-0.1, 0.1)
        need /= c
    if rng.random() < 0.3 * p and need < 1:
        a = glare(rng, a, float(rng.uniform(0.3, 1.0)) * min(GLARE_MAX, 1 - need))
    a = np.clip(a, 0, 1)
    u = rng.random()
    if u < 0.3 * p:  # defocus
        im = Image.fromarray((a * 255 + 0.5).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(min(digit_h * rng.uniform(0.02, 0.07), defocus_cap)))
    elif u < 0.5 * p:  # camera shake
        a = motion_blur(a, min(digit_h * rng.uniform(0.05, 0.16), smear_cap), rng.uniform(0, np.pi))
        im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
    else:
        im = Image.fromarray((a * 255 + 0.5).astype(np.uint8))
    if rng.random() < 0.5 * p:  # a phone's, or a messenger's, heavy JPEG
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(rng.integers(8, 35)))
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return im
