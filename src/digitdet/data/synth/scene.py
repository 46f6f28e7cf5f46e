"""Assemble one synthetic sample: number, clutter, plate, wall, warp, camera degradations, boxes.

See render for the glyph helpers and the box rule."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitdet.data.synth import style as sty
from digitdet.data.synth.render import (
    LOOKALIKE_MIN_VISIBLE,
    MAX_SIDE,
    MIN_VISIBLE,
    Glyph,
    Sample,
    affine,
    apply_h,
    composite,
    digit_height,
    final_box,
    final_mask,
    layout,
    make_glyph,
    number_chars,
    pil_coeffs,
    sample_style,
    text_patch,
    tight_box,
    translate,
)
from digitdet.errors import DataError

VIS_MIN, VIS_TAIL = 0.13, 0.07  # visibility: mean luminance change the digit's ink makes (0..1)
CUT_BAND = (0.3, 0.7)


def _edge_x(H: np.ndarray, y: float, target: float, lo: float, hi: float) -> float:
    """Number-coordinate x on row y that the warp sends to output x = target (crop edge)."""
    xs = np.linspace(lo, hi, 256)
    ox = apply_h(H, np.c_[xs, np.full_like(xs, y)])[:, 0]
    order = np.argsort(ox)
    return float(np.interp(target, ox[order], xs[order]))


def _warped_extent(H: np.ndarray, glyphs: list[Glyph]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max (x, y) of the glyphs' ink boxes after the warp H."""
    corners = []
    for g in glyphs:
        x0, y0, x1, y1 = g.nbox()
        corners += [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    q = apply_h(H, np.array(corners, dtype=np.float64))
    return q.min(0), q.max(0)


def _overlaps(a, b, m: float) -> bool:
    return a[0] < b[2] + m and b[0] < a[2] + m and a[1] < b[3] + m and b[1] < a[3] + m


def _edge_glyph(rng, g: Glyph, H, Wc: int, nb, R: float, row_y: float, left: bool) -> bool:
    """Move g so that only a small part (<~40 %) of its ink shows at the left/right crop edge."""
    gw = g.box[2] - g.box[0]
    lo, hi = nb[0] - 20 * R, nb[2] + 20 * R
    v = rng.uniform(0.08, 0.4)
    if left:
        xe = _edge_x(H, row_y, 0.0, lo, hi)
        right = min(xe + v * gw, nb[0] - 0.1 * R)
        if right - xe < 0.05 * gw:
            return False
        g.x = int(round(right - g.box[2]))
    else:
        xe = _edge_x(H, row_y, float(Wc), lo, hi)
        left_x = max(xe - v * gw, nb[2] + 0.1 * R)
        if xe - left_x < 0.05 * gw:
            return False
        g.x = int(round(left_x - g.box[0]))
    return True


def draw_plate(rng, P, A, nb, R: float, ox: int, oy: int, plate_col, fg_col) -> None:
    h, w = A.shape
    pl = nb[0] - R * rng.uniform(0.12, 0.7) - ox
    pr = nb[2] + R * rng.uniform(0.12, 0.7) - ox
    pt = nb[1] - R * rng.uniform(0.1, 0.5) - oy
    pb = nb[3] + R * rng.uniform(0.1, 0.5) - oy
    ellipse = rng.random() < 0.1
    if ellipse:
        cxp, cyp, rx, ry = (pl + pr) / 2, (pt + pb) / 2, (pr - pl) * 0.68, (pb - pt) * 0.72
        pl, pr, pt, pb = cxp - rx, cxp + rx, cyp - ry, cyp + ry
    rad = float(rng.uniform(0, 0.45) * min(pr - pl, pb - pt)) if rng.random() < 0.6 else 0.0

    def shape(d: ImageDraw.ImageDraw, inset: float, **kw) -> None:
        box = (pl + inset, pt + inset, pr - inset, pb - inset)
        if box[2] <= box[0] + 1 or box[3] <= box[1] + 1:
            return
        if ellipse:
            d.ellipse(box, **kw)
        else:
            d.rounded_rectangle(box, radius=max(0.0, rad - inset), **kw)

    m = Image.new("L", (w, h), 0)
    shape(ImageDraw.Draw(m), 0, fill=255)
    if rng.random() < 0.3:  # the plate's shadow on the wall
        d = max(1, int(R * rng.uniform(0.03, 0.12)))
        sh = np.asarray(m.filter(ImageFilter.GaussianBlur(R * 0.06)), np.float32) / 255.0
        composite(P, A, np.roll(sh, (d, d), (0, 1)) * rng.uniform(0.3, 0.6), np.zeros(3, np.float32), 0, 0)
    a = np.asarray(m, np.float32) / 255.0
    col = plate_col
    if rng.random() < 0.3:
        col = sty.background(rng, h, w, plate_col, R)
    composite(P, A, a, col, 0, 0)
    if rng.random() < 0.35:  # a border line
        b = Image.new("L", (w, h), 0)
        width = max(1, int(round(R * rng.uniform(0.03, 0.08))))
        shape(ImageDraw.Draw(b), R * rng.uniform(0.0, 0.15), outline=255, width=width)
        bc = fg_col if rng.random() < 0.7 else sty.color_with_lum(rng, float(rng.uniform(0.05, 0.95)))
        composite(P, A, np.asarray(b, np.float32) / 255.0, bc, 0, 0)
    if rng.random() < 0.2 and not ellipse:  # screws
        s = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(s)
        r = max(1.0, R * rng.uniform(0.03, 0.07))
        ins = R * rng.uniform(0.08, 0.2)
        for x, y in ((pl + ins, pt + ins), (pr - ins, pt + ins), (pl + ins, pb - ins), (pr - ins, pb - ins)):
            if nb[0] - ox - r < x < nb[2] - ox + r and nb[1] - oy - r < y < nb[3] - oy + r:
                continue
            d.ellipse((x - r, y - r, x + r, y + r), fill=255)
        composite(P, A, np.asarray(s, np.float32) / 255.0, np.full(3, rng.uniform(0.3, 0.8), np.float32), 0, 0)


def _clutter(rng, st, H, Wc: int, Hc: int, nb, R: float, fg_col, wall_col) -> list[Glyph]:
    out: list[Glyph] = []
    cy = (nb[1] + nb[3]) / 2
    if rng.random() < 0.18:  # the number continues beyond the crop: cut digits/letters on its row
        sides = [bool(rng.random() < 0.5)] if rng.random() < 0.7 else [True, False]
        for left in sides:
            is_digit = rng.random() < 0.8
            ch = str(int(rng.integers(10))) if is_digit else sty.LETTERS[int(rng.integers(len(sty.LETTERS)))]
            g = make_glyph(ch, st, int(ch) if is_digit else None)
            if g is not None and _edge_glyph(rng, g, H, Wc, nb, R, cy, left):
                out.append(g)
    if rng.random() < 0.12:  # a big glyph of another sign at an edge
        is_digit = rng.random() < 0.5
        ch = str(int(rng.integers(10))) if is_digit else sty.LETTERS[int(rng.integers(len(sty.LETTERS)))]
        font = sty.pick_font(rng)
        col = sty.color_with_lum(rng, float(np.clip(sty.lum(wall_col) + rng.choice([-0.45, 0.45]), 0.03, 0.97)))
        bst = type(st)(font=font, size=int(st.size * rng.uniform(1.4, 3.5)), sx=1.0, fill=col)
        g = make_glyph(ch, bst, int(ch) if is_digit else None)
        if g is not None:
            row = float(apply_h(np.linalg.inv(H), np.array([[Wc / 2, rng.uniform(0, Hc)]]))[0, 1])
            g.y = int(round(row - (g.box[1] + g.box[3]) / 2))
            if _edge_glyph(rng, g, H, Wc, nb, R, row, bool(rng.random() < 0.5)) and \
                    not _overlaps(g.nbox(), nb, 0.3 * R):
                out.append(g)
    if rng.random() < 0.15:  # a line of small text (street name, "No.") above or below
        n = int(rng.integers(3, 11))
        text = "".join(sty.LETTERS[int(i)] for i in rng.integers(len(sty.LETTERS), size=n))
        if n > 5 and rng.random() < 0.5:
            k = int(rng.integers(2, n - 2))
            text = text[:k] + " " + text[k:]
        font = sty.pick_font(rng) if rng.random() < 0.5 else st.font
        g = text_patch(font, int(st.size * rng.uniform(0.22, 0.45)), text)
        if g is not None:
            col = fg_col if rng.random() < 0.6 else sty.color_with_lum(rng, float(rng.uniform(0.05, 0.95)))
            g.layers = [(g.ink, col)]
            gap = R * rng.uniform(0.1, 0.4)
            if rng.random() < 0.6:
                g.y = int(round(nb[3] + gap - g.box[1]))
            else:
                g.y = int(round(nb[1] - gap - g.box[3]))
            g.x = int(round((nb[0] + nb[2]) / 2 - (g.box[0] + g.box[2]) / 2 + rng.normal(0, 0.3) * R))
            out.append(g)
    return out


def camera(rng, img: np.ndarray, R: float, sub: tuple | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Lighting, cast shadow and colour grading at render scale (float32 (h, w, 3) in 0..1).

    sub = (window image, x0, y0): a second image of a window of the crop that gets the very same
    treatment (used to see how much the digits change the picture)."""
    h, w = img.shape[:2]
    ims = [(img, 0, 0)] + ([sub] if sub is not None else [])

    def scale(field: np.ndarray) -> None:
        for a, x0, y0 in ims:
            a *= field[y0:y0 + a.shape[0], x0:x0 + a.shape[1], None]

    if rng.random() < 0.7:
        f = sty.lowfreq(rng, h, w, rng.uniform(1, 3))
        scale(1 + rng.uniform(0.05, 0.4) * (2 * f - 1))
    if rng.random() < 0.18:  # a cast shadow edge
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = (xx - rng.uniform(0, w)) * np.cos(ang) + (yy - rng.uniform(0, h)) * np.sin(ang)
        m = np.clip(0.5 + d / max(1.0, R * rng.uniform(0.03, 0.4)), 0, 1)
        scale(1 - rng.uniform(0.25, 0.65) * m)
    t = rng.uniform(0, 0.6)  # desaturation
    c = rng.uniform(0.4, 0.6) if rng.random() < 0.1 else rng.uniform(0.6, 1.05)  # contrast
    gain = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    bias = rng.uniform(-0.08, 0.08)
    mean = None
    out = []
    for a, _, _ in ims:
        a = a * (1 - t) + sty.lum(a)[..., None] * t
        mean = float(a.mean()) if mean is None else mean
        out.append(np.clip(((a - mean) * c + mean) * gain + bias, 0, 1))
    return out[0], (out[1] if sub is not None else None)


def degrade(rng, im: Image.Image, h_final: float) -> Image.Image:
    """Low resolution, blur, sensor noise and JPEG at the final size."""
    W, H = im.size
    if rng.random() < 0.6:
        f = rng.uniform(max(0.3, 9.0 / h_final), 1.0)
        if f < 0.9:
            small = im.resize((max(2, round(W * f)), max(2, round(H * f))), Image.BOX)
            up = (Image.BILINEAR, Image.BICUBIC, Image.NEAREST)[int(rng.choice(3, p=[0.5, 0.45, 0.05]))]
            im = small.resize((W, H), up)
    u = rng.random()
    if u < 0.06:
        im = im.filter(ImageFilter.GaussianBlur(h_final * rng.uniform(0.05, 0.09)))
    elif u < 0.7:
        im = im.filter(ImageFilter.GaussianBlur(h_final * rng.uniform(0.01, 0.04)))
    a = np.array(im, np.float32)
    a += rng.standard_normal(a.shape, dtype=np.float32) * np.float32(rng.uniform(0.5, 6.0))
    im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(rng.integers(20, 91)))
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return im


def warp_layer(P: np.ndarray, A: np.ndarray, size: tuple[int, int], M: np.ndarray) -> np.ndarray:
    """Warp a premultiplied layer (P colour * alpha, A alpha): (h, w, 4) premultiplied float32 0..1."""
    rgba = np.concatenate([P, A[..., None]], axis=2) * 255 + 0.5
    fg = Image.frombytes("RGBa", (A.shape[1], A.shape[0]), np.clip(rgba, 0, 255).astype(np.uint8).tobytes())
    return np.asarray(fg.transform(size, Image.PERSPECTIVE, pil_coeffs(M), Image.BILINEAR), np.float32) / 255.0


def render_sample(rng: np.random.Generator) -> Sample:
    """One synthetic house-number crop with tight boxes, labels and final-resolution glyph masks.

    A draw whose number came out nearly invisible (digit barely differs from what is behind it after
    lighting and grading) is redrawn from the same generator, except for a small hard tail."""
    for attempt in range(50):
        s = _render_once(rng, strict=attempt < 7)
        if s is not None:
            return s
    raise DataError("synthetic sample: no usable draw in 50 attempts")  # pragma: no cover


def _render_once(rng: np.random.Generator, strict: bool) -> Sample | None:
    chars, labels = number_chars(rng)
    h_final = digit_height(rng)
    R = float(np.clip(h_final * rng.uniform(0.9, 1.3), 22, 44))
    bg_col, fg_col = sty.sample_colors(rng)
    plate = rng.random() < 0.45
    wall_col = sty.color_with_lum(rng, float(rng.uniform(0.05, 0.95))) if plate else bg_col
    st = sample_style(rng, R, fg_col, bg_col)
    glyphs = layout(rng, chars, labels, st, R)
    if not any(g.label is not None for g in glyphs):
        return None
    boxes = np.array([g.nbox() for g in glyphs], dtype=np.float64)
    nb = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
    dh = float(np.median([b[3] - b[1] for b, g in zip(boxes, glyphs) if g.label is not None]))

    # Geometry: affine about the number centre, crop around it, mild perspective about the crop centre.
    L = affine(rng) @ translate(-(nb[0] + nb[2]) / 2, -(nb[1] + nb[3]) / 2)
    tc = apply_h(L, np.array([[nb[0], nb[1]], [nb[2], nb[1]], [nb[2], nb[3]], [nb[0], nb[3]]]))
    tx0, ty0 = tc.min(0)
    wt, ht = tc.max(0) - tc.min(0)
    s = h_final / dh
    Hc = ht / float(np.clip(rng.normal(0.5, 0.12), 0.25, 0.85))
    Hc = max(min(Hc, MAX_SIDE / s), ht + 2, 14 / s)
    Wc = max(Hc * rng.uniform(1.1, 2.6), wt + 2 * rng.uniform(0.08, 0.5) * ht)
    Wc = max(min(Wc, 1.6 * MAX_SIDE / s), wt + 2)
    Wc, Hc = int(np.ceil(Wc)), int(np.ceil(Hc))
    px = rng.beta(2.5, 2.5) * (Wc - wt) - tx0
    py = rng.beta(2.5, 2.5) * (Hc - ht) - ty0
    gx = np.clip(rng.normal(0, 0.06), -0.15, 0.15) / (Wc / 2)
    gy = np.clip(rng.normal(0, 0.06), -0.15, 0.15) / (Hc / 2)
    Pm = translate(Wc / 2, Hc / 2) @ np.array([[1, 0, 0], [0, 1, 0], [gx, gy, 1]]) @ translate(-Wc / 2, -Hc / 2)
    H = Pm @ translate(px, py) @ L
    # The perspective moves things near the edges: shift so the digits' boxes are inside the crop, or, at
    # times, so that the first/last digit is cut by at most 30 % of its width.
    (ax0, ay0), (ax1, ay1) = _warped_extent(H, glyphs)
    dx = 1 - ax0 if ax0 < 1 else (Wc - 1 - ax1 if ax1 > Wc - 1 else 0.0)
    dy = 1 - ay0 if ay0 < 1 else (Hc - 1 - ay1 if ay1 > Hc - 1 else 0.0)
    if rng.random() < 0.04:
        left = rng.random() < 0.5
        (ex0, _), (ex1, _) = _warped_extent(H, [glyphs[0] if left else glyphs[-1]])
        e = rng.uniform(0.05, 0.3) * (ex1 - ex0)
        dx = -e - ex0 if left else Wc + e - ex1
    H = translate(dx, dy) @ H
    Hinv = np.linalg.inv(H)

    # Every digit's ink warped exactly like the image, and the fraction of it inside the crop.
    detH = float(np.linalg.det(H))
    warped: dict[int, tuple[Image.Image, float]] = {}

    def warp_ink(g: Glyph) -> float:
        c = np.array([[g.x + (g.box[0] + g.box[2]) / 2, g.y + (g.box[1] + g.box[3]) / 2, 1.0]])
        total = float(g.ink.sum()) * abs(detH / float((c @ H.T)[0, 2]) ** 3)
        m = Image.fromarray((g.ink * 255 + 0.5).astype(np.uint8), "L")
        m = m.transform((Wc, Hc), Image.PERSPECTIVE, pil_coeffs(translate(-g.x, -g.y) @ Hinv), Image.BILINEAR)
        frac = float(np.asarray(m).sum(dtype=np.float64)) / 255.0 / total if total > 0 else 0.0
        warped[id(g)] = (m, frac)
        return frac

    for g in glyphs:
        if g.label is not None:
            warp_ink(g)
    # Cut neighbours: a digit either shows clearly less than half (no box) or clearly more (a box);
    # one that would land in between (30-70 %) is left out so that the rule is never ambiguous.
    clutter = [g for g in _clutter(rng, st, H, Wc, Hc, nb, R, fg_col, wall_col)
               if g.label is None or not CUT_BAND[0] < warp_ink(g) < CUT_BAND[1]]
    cc = apply_h(Hinv, np.array([[0, 0], [Wc, 0], [Wc, Hc], [0, Hc]], dtype=np.float64))
    lim = 14 * R
    cx0 = int(np.floor(max(cc[:, 0].min(), nb[0] - lim))) - 2
    cy0 = int(np.floor(max(cc[:, 1].min(), nb[1] - lim))) - 2
    cx1 = int(np.ceil(min(cc[:, 0].max(), nb[2] + lim))) + 2
    cy1 = int(np.ceil(min(cc[:, 1].max(), nb[3] + lim))) + 2
    P = np.zeros((cy1 - cy0, cx1 - cx0, 3), np.float32)
    A = np.zeros((cy1 - cy0, cx1 - cx0), np.float32)
    if plate:
        draw_plate(rng, P, A, nb, R, cx0, cy0, bg_col, fg_col)
    for g in clutter:
        for alpha, col in g.layers:
            composite(P, A, alpha, col, g.x - cx0, g.y - cy0)
    P0, A0 = P.copy(), A.copy()
    for g in glyphs:
        for alpha, col in g.layers:
            composite(P, A, alpha, col, g.x - cx0, g.y - cy0)
    M = translate(-cx0, -cy0) @ Hinv
    kb = apply_h(H, np.array([[nb[0], nb[1]], [nb[2], nb[1]], [nb[2], nb[3]], [nb[0], nb[3]]]))
    # The window around the number where the picture is also made without the digits (visibility).
    wx0, wy0 = (max(0, int(np.floor(v)) - 2) for v in kb.min(0))
    wx1, wy1 = min(Wc, int(np.ceil(kb[:, 0].max())) + 2), min(Hc, int(np.ceil(kb[:, 1].max())) + 2)
    wx1, wy1 = max(wx1, wx0 + 1), max(wy1, wy0 + 1)
    fg = warp_layer(P, A, (Wc, Hc), M)
    fg0 = warp_layer(P0, A0, (wx1 - wx0, wy1 - wy0), M @ translate(wx0, wy0))
    keep = (kb[:, 0].min() - 0.2 * R, kb[:, 1].min() - 0.2 * R, kb[:, 0].max() + 0.2 * R, kb[:, 1].max() + 0.2 * R)
    img = sty.background(rng, Hc, Wc, wall_col, R)
    sty.add_structures(rng, img, R, keep)
    without = (img[wy0:wy1, wx0:wx1] * (1 - fg0[..., 3:4]) + fg0[..., :3]).astype(np.float32)
    img = (img * (1 - fg[..., 3:4]) + fg[..., :3]).astype(np.float32)
    img, without = camera(rng, img, R, (without, wx0, wy0))
    gamma = float(rng.uniform(0.8, 1.2))
    diff = np.zeros((Hc, Wc), np.float32)  # luminance: colour-only contrast dies in JPEG
    diff[wy0:wy1, wx0:wx1] = np.abs(sty.lum(img[wy0:wy1, wx0:wx1]) - sty.lum(without))

    # Boxes for digits >= 50 % inside; redraw if a number digit is nearly invisible.
    vis, kept = [], []
    for g in glyphs + clutter:
        if g.label is None:
            continue
        m, frac = warped[id(g)]
        ma = np.asarray(m) >= 128
        if g in glyphs and ma.any():
            vis.append(float(diff[ma].mean()))
        if frac >= MIN_VISIBLE:
            kept.append((g.label, m))
    v = min(vis) if vis else 0.0
    if strict and v < VIS_MIN and not (v >= VIS_TAIL and rng.random() < 0.3):
        return None
    # Lookalikes: a letter, or a digit or letter cut by the crop edge (no digit box), whose ink shows.
    looks = []
    for g in glyphs + clutter:
        if g.text:
            continue
        if id(g) not in warped:
            warp_ink(g)
        m, frac = warped[id(g)]
        if (g.label is None or frac < MIN_VISIBLE) and frac >= LOOKALIKE_MIN_VISIBLE:
            looks.append(m)

    Wf, Hf = max(8, int(round(Wc * s))), max(8, int(round(Hc * s)))
    flt = (Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX)[int(rng.integers(4))]
    lut = (np.linspace(0, 1, 256) ** gamma * 255 + 0.5).astype(np.uint8).tolist()
    im = Image.fromarray((img * 255 + 0.5).astype(np.uint8), "RGB").point(lut * 3).resize((Wf, Hf), flt)
    out_boxes, out_labels, out_masks = [], [], []
    for label, m in kept:
        mk = final_mask(m, (Wf, Hf), shrink=Wf < Wc)
        b = tight_box(mk.astype(np.float32))
        if b is None:
            continue
        out_boxes.append([float(v) for v in b])
        out_labels.append(int(label))
        out_masks.append(mk)
    im = degrade(rng, im, h_final)
    out_looks = [b for b in (final_box(m, (Wf, Hf), Wf < Wc) for m in looks) if b is not None]
    return Sample(im, out_boxes, out_labels, out_masks, visibility=v, lookalikes=out_looks)
