"""Resources and looks for the synthetic house numbers: fonts, photo textures, colours, backgrounds.

Everything random takes a `numpy.random.Generator`; nothing here touches global random state. Fonts and
textures are found in installed packages (never system fonts, never the network) and cached per process.
"""

from __future__ import annotations

import colorsys
import glob
import importlib.util
import os
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitdet.errors import DataError

FONT_PACKAGES = ("font_caladea", "font_fjallaone", "font_lato", "font_manrope", "font_roboto")
MPL_FONT_PATTERNS = (
    "DejaVuSans.ttf",
    "DejaVuSans-*.ttf",
    "DejaVuSansMono*.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-*.ttf",
    "STIXGeneral*.ttf",
)
# Family -> relative chance of being picked (distinct typefaces matter more than many weights of one).
FAMILY_WEIGHT = {
    "Caladea": 1.0,
    "FjallaOne": 1.6,
    "Lato": 1.0,
    "Manrope": 1.0,
    "Roboto": 1.2,
    "DejaVuSans": 1.0,
    "DejaVuSansMono": 0.6,
    "DejaVuSerif": 0.8,
    "STIXGeneral": 0.8,
}
TEXTURE_NAMES = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "chelsea",
    "astronaut",
    "rocket",
    "camera",
    "moon",
    "coins",
    "page",
    "text",
    "clock",
)
# Letters that do not look like digits (no O/o/I/l/i/S/s/Z/z/B/g/q/G): clutter and suffixes, never digits.
LETTERS = "ACDEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy"


def _package_dirs(name: str) -> list[str]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return []
    return list(spec.submodule_search_locations)


def _family(path: str) -> str:
    stem = os.path.basename(path).rsplit(".", 1)[0]
    for fam in sorted(FAMILY_WEIGHT, key=len, reverse=True):
        if stem.startswith(fam):
            return fam
    return stem.split("-")[0]


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """TTF files of the font-* packages and matplotlib's DejaVu/STIX, sorted by file name."""
    found: dict[str, str] = {}
    for pkg in FONT_PACKAGES:
        for d in _package_dirs(pkg):
            for p in glob.glob(os.path.join(d, "**", "*.ttf"), recursive=True):
                if "Variable" not in os.path.basename(p):
                    found.setdefault(os.path.basename(p), p)
    for d in _package_dirs("matplotlib"):
        for pat in MPL_FONT_PATTERNS:
            for p in glob.glob(os.path.join(d, "mpl-data", "fonts", "ttf", pat)):
                found.setdefault(os.path.basename(p), p)
    if not found:
        raise DataError("no fonts found for the synthetic data: install matplotlib and the font-* packages")
    return tuple(found[k] for k in sorted(found))


@lru_cache(maxsize=1)
def _font_table() -> tuple[tuple[str, ...], np.ndarray]:
    files = font_files()
    fam_count: dict[str, int] = {}
    for f in files:
        fam_count[_family(f)] = fam_count.get(_family(f), 0) + 1
    w = np.array([FAMILY_WEIGHT.get(_family(f), 1.0) / fam_count[_family(f)] for f in files])
    # Hairline weights are rare on house numbers.
    w *= np.array([0.35 if any(t in f for t in ("Thin", "ExtraLight")) else 1.0 for f in files])
    return files, w / w.sum()


def pick_font(rng: np.random.Generator) -> str:
    files, p = _font_table()
    return files[int(rng.choice(len(files), p=p))]


@lru_cache(maxsize=4096)
def get_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@cache
def font_metrics(path: str) -> tuple[float, float]:
    """(digit ink height / font size, median digit ink width / height) measured at 100 px."""
    font = get_font(path, 100)
    hs, rs = [], []
    for ch in "0123456789":
        m = font.getmask(ch)
        a = np.asarray(m).reshape(m.size[1], m.size[0]) > 127
        ys, xs = np.nonzero(a)
        if len(ys) == 0:
            continue
        h = ys.max() - ys.min() + 1
        hs.append(h)
        rs.append((xs.max() - xs.min() + 1) / h)
    if not hs:
        raise DataError(f"font {path} has no digit glyphs")
    return float(np.mean(hs)) / 100.0, float(np.median(rs))


@lru_cache(maxsize=1)
def textures() -> tuple[Image.Image, ...]:
    """Real photos shipped inside scikit-image's wheel (skimage.data), loaded once per process.

    Every one must load: a texture silently missing would change the data a seed produces. Raises
    DataError naming the texture and the reason otherwise."""
    try:
        import skimage.data as skd
    except ImportError as exc:
        raise DataError(f"synthetic textures need scikit-image ({exc}); pip install scikit-image") from None
    out = []
    for name in TEXTURE_NAMES:
        try:
            a = np.asarray(getattr(skd, name)())
        except Exception as exc:  # noqa: BLE001 - any failure is reported with the texture's name
            raise DataError(f"synthetic texture skimage.data.{name} could not be loaded ({exc})") from None
        if a.dtype != np.uint8:
            raise DataError(f"synthetic texture skimage.data.{name} has dtype {a.dtype}, expected uint8")
        out.append(Image.fromarray(a).convert("RGB"))
    return tuple(out)


# ---------------------------------------------------------------- colours


def lum(c: np.ndarray) -> np.ndarray:
    return c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114


def _hue(rng: np.random.Generator) -> float:
    """Mostly the hues of houses: warm earth tones, then blues, greens, anything."""
    u = rng.random()
    if u < 0.45:  # beige, tan, brown, ochre
        return float(rng.uniform(0.06, 0.15))
    if u < 0.55:  # brick and barn reds
        return float(rng.uniform(0.0, 0.05))
    if u < 0.8:
        return float(rng.uniform(0.53, 0.65))
    if u < 0.92:
        return float(rng.uniform(0.2, 0.45))
    return float(rng.random())


def color_with_lum(rng: np.random.Generator, target: float, sat: float | None = None) -> np.ndarray:
    """A house-like hue with low-to-medium saturation whose luminance is about `target` (0..1)."""
    s = float(rng.beta(1.0, 3.2)) if sat is None else sat
    c = np.array(colorsys.hsv_to_rgb(_hue(rng), s, 1.0))
    c = c * (max(target, 0.0) / max(lum(c), 1e-3))
    if c.max() > 1.0:
        c = np.clip(c, 0, 1)
        lc = float(lum(c))
        if lc < target:
            c = c + (1 - c) * ((target - lc) / max(1 - lc, 1e-3))
    return np.clip(c, 0, 1).astype(np.float32)


# (plate or wall colour, digit colour) pairs often seen on real houses; jittered when used.
PRESETS = (
    ((0.10, 0.25, 0.60), (0.95, 0.95, 0.95)),  # white on blue enamel
    ((0.93, 0.93, 0.90), (0.08, 0.08, 0.10)),  # black on white
    ((0.08, 0.08, 0.08), (0.85, 0.70, 0.35)),  # brass on black
    ((0.10, 0.28, 0.15), (0.92, 0.92, 0.88)),  # white on dark green
    ((0.55, 0.15, 0.12), (0.95, 0.93, 0.88)),  # white on red
    ((0.45, 0.28, 0.15), (0.88, 0.75, 0.45)),  # brass on wood brown
    ((0.80, 0.78, 0.72), (0.20, 0.20, 0.22)),  # dark on beige stucco
    ((0.90, 0.90, 0.92), (0.15, 0.20, 0.45)),  # navy on white
)


def sample_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(background colour right behind the digits, digit colour) with mostly good contrast."""
    if rng.random() < 0.4:
        bg, fg = PRESETS[int(rng.integers(len(PRESETS)))]
        if rng.random() < 0.3:
            bg, fg = fg, bg
        jit = lambda c: np.clip(np.array(c) + rng.normal(0, 0.05, 3), 0, 1).astype(np.float32)  # noqa: E731
        return jit(bg), jit(fg)
    lb = float(rng.uniform(0.05, 0.95))
    contrast = rng.uniform(0.15, 0.3) if rng.random() < 0.08 else rng.uniform(0.35, 0.85)
    sign = 1.0 if lb < 0.5 else -1.0
    if rng.random() < 0.15:
        sign = -sign
    lf = lb + sign * contrast
    if not 0.02 <= lf <= 0.98:
        lf = lb - sign * contrast
    lf = float(np.clip(lf, 0.02, 0.98))
    return color_with_lum(rng, lb), color_with_lum(rng, lf)


# ---------------------------------------------------------------- fields and backgrounds


def lowfreq(rng: np.random.Generator, h: int, w: int, cells: float = 4.0) -> np.ndarray:
    """Smooth random field in 0..1 of shape (h, w)."""
    ch = max(2, int(round(cells * min(1.0, h / max(w, 1)))) + 1)
    cw = max(2, int(round(cells * min(1.0, w / max(h, 1)))) + 1)
    small = rng.random((ch, cw)).astype(np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((w, h), Image.BICUBIC)).clip(0, 1)


def _photo(rng: np.random.Generator, h: int, w: int, color: np.ndarray, names: tuple | None = None) -> np.ndarray:
    tex = textures()
    if names is not None:
        tex = tuple(tex[TEXTURE_NAMES.index(n)] for n in names)
    if not tex:
        return _stucco(rng, h, w, color)
    im = tex[int(rng.integers(len(tex)))]
    sc = float(np.exp(rng.uniform(np.log(0.25), np.log(1.6))))
    cw, ch = min(im.width, max(4, int(w / sc))), min(im.height, max(4, int(h / sc)))
    x0, y0 = int(rng.integers(0, im.width - cw + 1)), int(rng.integers(0, im.height - ch + 1))
    crop = im.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    a = np.asarray(crop.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
    keep = float(rng.uniform(0.0, 0.7))  # how much of the photo's own colour survives the tint
    g = lum(a)[..., None]
    g = 1.0 + (g / max(float(g.mean()), 1e-3) - 1.0) * rng.uniform(0.3, 1.0)
    return np.clip(keep * a + (1 - keep) * color * g, 0, 1)


def _stucco(rng: np.random.Generator, h: int, w: int, color: np.ndarray) -> np.ndarray:
    fine = rng.normal(0, rng.uniform(0.01, 0.08), (h, w)).astype(np.float32)
    f = 1 + fine + (lowfreq(rng, h, w, rng.uniform(2, 8)) - 0.5) * rng.uniform(0, 0.3)
    return np.clip(color * f[..., None], 0, 1)


def _gradient(rng: np.random.Generator, h: int, w: int, color: np.ndarray) -> np.ndarray:
    other = np.clip(color * rng.uniform(0.5, 1.4) + rng.normal(0, 0.08, 3), 0, 1)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(ang) + yy * np.sin(ang)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    return (color * (1 - t[..., None]) + other * t[..., None]).astype(np.float32)


def _brick(rng: np.random.Generator, h: int, w: int, color: np.ndarray, unit: float) -> np.ndarray:
    bh = max(3, int(unit * rng.uniform(0.25, 0.7)))
    bw = max(6, int(bh * rng.uniform(2.0, 3.5)))
    mt = max(1, int(bh * rng.uniform(0.08, 0.2)))
    yy, xx = np.mgrid[0:h, 0:w]
    row = yy // bh
    xs = xx + (row % 2) * (bw // 2)
    col = xs // bw
    table = 1 + rng.normal(0, 0.12, (row.max() + 1, col.max() + 1)).astype(np.float32)
    f = table[row, col]
    mortar = ((yy % bh) < mt) | ((xs % bw) < mt)
    mortar_col = np.clip(color * 0.4 + rng.uniform(0.3, 0.7) * 0.6, 0, 1)
    out = color * f[..., None]
    out[mortar] = mortar_col
    return np.clip(out * (1 + rng.normal(0, 0.04, (h, w, 1))), 0, 1).astype(np.float32)


def _wood(rng: np.random.Generator, h: int, w: int, color: np.ndarray, unit: float) -> np.ndarray:
    vertical = rng.random() < 0.3
    if vertical:
        h, w = w, h
    period = unit * rng.uniform(0.08, 0.3)
    warp = lowfreq(rng, h, w, rng.uniform(2, 6)) * rng.uniform(2, 8)
    yy = np.arange(h, dtype=np.float32)[:, None]
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (yy / period + warp))
    streak = np.asarray(
        Image.fromarray(rng.random((max(2, h // 2), max(2, w // 12))).astype(np.float32), "F").resize(
            (w, h), Image.BILINEAR
        )
    )
    f = 0.75 + 0.25 * grain * rng.uniform(0.4, 1.0) + (streak - 0.5) * 0.15
    out = np.clip(color * f[..., None], 0, 1)
    if rng.random() < 0.5:  # board seams
        bh = max(4, int(unit * rng.uniform(0.6, 2.0)))
        out[(np.arange(h) % bh) < max(1, bh // 14)] *= 0.55
    return (out.transpose(1, 0, 2) if vertical else out).astype(np.float32)


def _siding(rng: np.random.Generator, h: int, w: int, color: np.ndarray, unit: float) -> np.ndarray:
    bh = max(4, int(unit * rng.uniform(0.3, 1.0)))
    t = (np.arange(h) % bh) / bh
    shade = 1.0 - rng.uniform(0.1, 0.35) * t
    shade[(np.arange(h) % bh) < max(1, bh // 10)] *= rng.uniform(0.4, 0.8)
    return np.clip(color * shade[:, None, None] * np.ones((1, w, 1), np.float32), 0, 1).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int, color: np.ndarray, unit: float,
               p: tuple | None = None, names: tuple | None = None) -> np.ndarray:
    """An (h, w, 3) float32 wall around `color`: photo texture, brick, wood, siding, stucco, gradient,
    with chances `p` (6 numbers, in that order; default the crop mode's) and photos among `names`
    (TEXTURE_NAMES; default all)."""
    kind = rng.choice(6, p=[0.34, 0.1, 0.12, 0.08, 0.24, 0.12] if p is None else p)
    if kind == 0:
        return _photo(rng, h, w, color, names)
    if kind == 1:
        return _brick(rng, h, w, color, unit)
    if kind == 2:
        return _wood(rng, h, w, color, unit)
    if kind == 3:
        return _siding(rng, h, w, color, unit)
    if kind == 4:
        return _stucco(rng, h, w, color)
    return _gradient(rng, h, w, color)


def add_structures(rng: np.random.Generator, img: np.ndarray, unit: float, keep_out: tuple) -> None:
    """Door frames, window panes, poles, cables and panel edges around (not over) the number, in place.

    keep_out = (x0, y0, x1, y1): the number's box in img coordinates; structures avoid it."""
    h, w = img.shape[:2]
    n = int(rng.choice(5, p=[0.3, 0.3, 0.22, 0.12, 0.06]))
    for _ in range(n):
        m = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(m)
        kind = rng.random()
        kx0, ky0, kx1, ky1 = keep_out
        if kind < 0.4:  # vertical bar or panel edge left/right of the number
            bw = max(2, int(unit * rng.uniform(0.1, 1.5)))
            if rng.random() < 0.5 and kx0 > 3:
                x = int(rng.uniform(-bw, kx0 - 2))
            elif kx1 < w - 3:
                x = int(rng.uniform(kx1 + 2, w))
            else:
                continue
            if rng.random() < 0.4:  # a whole panel to the edge
                d.rectangle((0, 0, max(x, 0), h) if x < kx0 else (min(x, w), 0, w, h), fill=255)
            else:
                tilt = rng.normal(0, 0.03) * h
                d.polygon(
                    [
                        (x, 0),
                        (min(x + bw, kx0 - 1) if x < kx0 else x + bw, 0),
                        (min(x + bw + tilt, kx0 - 1) if x < kx0 else x + bw + tilt, h),
                        (x + tilt, h),
                    ],
                    fill=255,
                )
        elif kind < 0.7:  # horizontal bar above or below
            bh = max(2, int(unit * rng.uniform(0.08, 0.8)))
            if rng.random() < 0.5 and ky0 > 3:
                y = int(rng.uniform(-bh, ky0 - 2))
                d.rectangle((0, y, w, min(y + bh, ky0 - 1)), fill=255)
            elif ky1 < h - 3:
                y = int(rng.uniform(ky1 + 2, h))
                d.rectangle((0, y, w, y + bh), fill=255)
            else:
                continue
        elif kind < 0.85:  # a dark cable or pipe curving past
            side = 0 if rng.random() < 0.5 else 1
            xa = rng.uniform(0, max(1, kx0)) if side == 0 else rng.uniform(min(kx1, w - 1), w)
            pts = [(float(xa + rng.normal(0, unit * 0.3) * t), float(t * h / 4)) for t in range(5)]
            if any(kx0 - 2 < p[0] < kx1 + 2 for p in pts):
                continue
            d.line(pts, fill=255, width=max(1, int(unit * rng.uniform(0.05, 0.3))))
        else:  # small bright or dark spots (lamps, screws, holes)
            for _ in range(int(rng.integers(1, 4))):
                r = unit * rng.uniform(0.04, 0.15)
                cx, cy = rng.uniform(0, w), rng.uniform(0, h)
                if kx0 - r < cx < kx1 + r and ky0 - r < cy < ky1 + r:
                    continue
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        a = np.asarray(m, dtype=np.float32)[..., None] / 255.0
        other = color_with_lum(rng, float(rng.uniform(0.02, 0.98)))
        if rng.random() < 0.5:
            other = background(rng, h, w, other, unit)
        img *= 1 - a
        img += a * other
