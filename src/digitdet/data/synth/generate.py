"""The embedded default dataset: deterministic synthetic SVHN-like house-number crops in COCO layout.

    generate_dataset(out_dir, {"train": N, "valid": N, "test": N}, seed=S, workers=W, modes=None)
    write_preview("preview.png", n=48, seed=S, modes=None)
    render_sample(numpy.random.default_rng(...)) -> Sample(image, boxes, labels, masks)

`modes` mixes the generator's modes by weight, e.g. {"crop": 0.4, "tight": 0.2, "plaque": 0.2, "scene": 0.2}
(SVHN-like crops, tight crops, house-number plaques, wall scenes with the number small; see data.synth.modes).
None is the crop mode alone, byte-identical to the data made before modes existed.

Image `i` (ids from 1) of split number `k` (train 0, valid 1, test 2) is drawn from
`numpy.random.default_rng([seed, k, i])` alone, so the output is byte-identical for a seed whatever the
number of worker processes. Fonts come from the font-* packages and matplotlib, textures from
scikit-image's bundled photos: nothing is downloaded. The look and the box rule are described in
data.synth.render / data.synth.scene.

Every generated folder holds SYNTH_MARKER (seed, counts, modes, fonts and textures used). Only a missing or
empty folder, or one holding that marker, is ever written: generating never replaces a user's data.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitdet.data.synth import style as synth_style
from digitdet.data.synth.compose import check_half_cuts, half_cuts
from digitdet.data.synth.modes import MODES, check_modes, parse_modes, render_mixed
from digitdet.data.synth.render import Sample, check_letters, letter_suffixes
from digitdet.data.synth.scene import render_sample
from digitdet.data.synth.wall import check_slats, slatted_walls
from digitdet.errors import DataError
from digitdet.io import atomic_dir, atomic_path, write_json

__all__ = ["SPLITS", "MODES", "Sample", "generate_dataset", "render_sample", "render_mixed", "write_preview",
           "sample_rng", "parse_modes", "check_modes", "PREVIEW_CELL", "SYNTH_MARKER", "SYNTH_FORMAT",
           "is_synthetic", "check_replaceable", "map_renders"]

SPLITS = ("train", "valid", "test")
CATEGORIES = [{"id": d + 1, "name": str(d)} for d in range(10)]
PREVIEW_CELL = (192, 112)  # (width, height) of one preview tile, label strip included
SYNTH_MARKER = "digitdet-synth.json"  # written into every generated folder: it is ours to replace
SYNTH_FORMAT = 2  # 2: the json files also hold "lookalikes" (older folders lack the key)


def is_synthetic(folder: str | os.PathLike) -> bool:
    """True when `folder` was written by generate_dataset (it holds SYNTH_MARKER)."""
    return (Path(folder) / SYNTH_MARKER).is_file()


def check_replaceable(folder: str | os.PathLike) -> None:
    """Raise DataError unless `folder` is missing, empty, or digitdet's own synthetic output.

    generate_dataset replaces the whole folder, so anything else in it (a user's real data, notes) would
    be lost."""
    path = Path(folder)
    if not path.exists() or is_synthetic(path):
        return
    if not path.is_dir():
        raise DataError(f"{path}: exists and is not a folder; refusing to replace it with synthetic data")
    entries = sorted(p.name for p in path.iterdir())
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise DataError(f"{path}: not empty ({shown}) and not digitdet's synthetic data (no {SYNTH_MARKER}); "
                        "refusing to replace it: choose a new or empty folder")


def sample_rng(seed: int, split_no: int, index: int) -> np.random.Generator:
    """The generator that draws image `index` (1-based) of split number `split_no`."""
    return np.random.default_rng([int(seed), int(split_no), int(index)])


def _render_task(task: tuple[int, int, int, str, dict | None, float | None, float | None, tuple]
                 ) -> tuple[int, int, list, list, list]:
    seed, split_no, index, path, modes, letters, slats, half = task
    with letter_suffixes(letters), slatted_walls(slats), half_cuts(*half):
        s = render_mixed(sample_rng(seed, split_no, index), modes)
    s.image.save(path, format="PNG", compress_level=1)  # fast; zlib level 6 is 3x slower for 10 % less
    return s.image.width, s.image.height, s.boxes, s.labels, s.lookalikes


def _warm() -> None:
    """Load fonts, their metrics and the textures once (before forking, so workers share them)."""
    for f in synth_style.font_files():
        synth_style.font_metrics(f)
    synth_style.textures()


def map_renders(fn: Callable, tasks: list, workers: int, *, inline_below: int, chunksize: int,
                on_done: Callable[[], object] | None = None) -> list:
    """[fn(t) for t in tasks], in order: in this process for one worker or fewer than `inline_below`
    tasks, else in a pool of forked processes that start with the fonts and textures loaded (so the
    result never depends on the number of workers). `on_done()` after each task."""
    if workers <= 1 or len(tasks) < inline_below:
        out = []
        for t in tasks:
            out.append(fn(t))
            if on_done:
                on_done()
        return out
    _warm()  # before forking: workers inherit what is loaded
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    out = []
    with ctx.Pool(workers, initializer=_warm) as pool:
        for r in pool.imap(fn, tasks, chunksize=chunksize):
            out.append(r)
            if on_done:
                on_done()
    return out


def _check_counts(counts: dict) -> dict[str, int]:
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise DataError(f"unknown split(s) {sorted(unknown)}; expected some of {list(SPLITS)}")
    out = {}
    for k in SPLITS:
        n = counts.get(k, 0)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"count for split {k!r} must be a non-negative integer, got {n!r}")
        out[k] = int(n)
    return out


def _coco(rows: list[tuple[int, int, list, list, list]]) -> dict:
    """COCO json of one split, plus digitdet's own top-level "lookalikes": [{"image_id", "bbox"}], boxes
    of glyphs that look like a digit but are none (COCO tools ignore the key; data.coco reads it)."""
    images, anns, looks = [], [], []
    for i, (w, h, boxes, labels, lookalikes) in enumerate(rows, start=1):
        images.append({"id": i, "file_name": f"{i}.png", "width": w, "height": h})
        for (x0, y0, x1, y1), lab in zip(boxes, labels):
            bw, bh = float(x1 - x0), float(y1 - y0)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab) + 1,
                         "bbox": [float(x0), float(y0), bw, bh], "area": bw * bh, "iscrowd": 0})
        looks += [{"image_id": i, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]}
                  for x0, y0, x1, y1 in lookalikes]
    return {"images": images, "annotations": anns, "categories": CATEGORIES, "lookalikes": looks}


def generate_dataset(out_dir, counts: dict[str, int], seed: int = 0, workers: int | None = None,
                     progress: bool = True, modes: dict[str, float] | None = None,
                     letters: float | None = None, slats: float | None = None,
                     half: float | None = None, half_count: float = 0.5) -> dict:
    """Write OUT/{split}/1.png... and OUT/{split}.json (COCO) for each split with a count > 0.

    modes: {mode: weight} over modes.MODES (None: {"crop": 1.0}); each image's mode is drawn from
    its own generator, so the output stays byte-identical for a seed whatever the number of workers.
    letters: the chance that a number gets a letter suffix ("58P", a lookalike, never a digit box) in every
    mode (None: each mode's own, 4 %, 6 % on plaques); the reader's hard negatives.
    slats: the chance that a scene or sign photo's wall carries a panel of vertical slats (each a lookalike
    box: a 1 to a digit reader; None: never, the same bytes as before the option).
    half: the chance that a digit cut by the crop border keeps nearly `half_count` of its ink, 30 % to
    half_count - 5 % (no box) or half_count + 5 % to 72 % (a box), where a cut digit then counts from
    half_count of its ink (compose.half_cuts; None: never, the same bytes as before the option): training
    data only, the test splits have none.

    The folder is built beside OUT and moved into place only when complete; OUT must be missing, empty or
    an earlier synthetic output (else DataError, nothing touched). Returns
    {'images', 'boxes', 'seconds', 'images_per_s'}."""
    from tqdm import tqdm

    counts = _check_counts(counts)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    modes = check_modes(modes)
    letters, slats, half = check_letters(letters), check_slats(slats), check_half_cuts(half, half_count)
    check_replaceable(out_dir)
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    total = sum(counts.values())
    t0 = time.perf_counter()
    n_boxes = 0
    _warm()  # fonts/textures load once here; forked workers inherit them
    with atomic_dir(out_dir) as tmp:
        tasks = []
        for k, split in enumerate(SPLITS):
            if counts[split]:
                (tmp / split).mkdir()
                tasks += [(int(seed), k, i, str(tmp / split / f"{i}.png"), modes, letters, slats, half)
                          for i in range(1, counts[split] + 1)]
        bar = tqdm(total=total, unit="img", desc="synth", disable=not progress)
        rows = map_renders(_render_task, tasks, workers, inline_below=64, chunksize=8, on_done=bar.update)
        bar.close()
        start = 0
        for split in SPLITS:
            n = counts[split]
            if not n:
                continue
            coco = _coco(rows[start:start + n])
            start += n
            n_boxes += len(coco["annotations"])
            write_json(tmp / f"{split}.json", coco, indent=None)
        write_json(tmp / SYNTH_MARKER, {
            "generator": "digitdet.data.synth", "format": SYNTH_FORMAT, "seed": int(seed), "counts": counts,
            "modes": modes, "letters": letters, "slats": slats, "half_cuts": half[0],
            **({"half_count": half[1]} if half[0] is not None else {}),
            "fonts": [os.path.basename(f) for f in synth_style.font_files()],
            "textures": list(synth_style.TEXTURE_NAMES),
        })
        check_replaceable(out_dir)  # again: something may have appeared there while we rendered
    secs = time.perf_counter() - t0
    return {"images": total, "boxes": n_boxes, "seconds": round(secs, 3),
            "images_per_s": round(total / secs, 2) if secs > 0 else 0.0}


def _draw_sample(s: Sample, cell: tuple[int, int]) -> Image.Image:
    cw, ch = cell
    strip = 16
    im = s.image
    sc = min((cw - 4) / im.width, (ch - strip - 4) / im.height)
    w, h = max(1, round(im.width * sc)), max(1, round(im.height * sc))
    tile = Image.new("RGB", cell, (255, 255, 255))
    tile.paste(im.resize((w, h), Image.BILINEAR), (2, strip + 2))
    d = ImageDraw.Draw(tile)
    font = synth_style.get_font(_label_font(), 12)
    small = synth_style.get_font(_label_font(), 10)
    def tile_box(x0, y0, x1, y1) -> tuple[float, float, float, float]:
        """A box in tile pixels, at least one pixel a side (a small-print lookalike shrinks below one)."""
        bx0, by0 = 2 + x0 * sc, strip + 2 + y0 * sc
        return bx0, by0, max(bx0, 2 + x1 * sc - 1), max(by0, strip + 2 + y1 * sc - 1)

    for b in s.lookalikes:  # drawn first, in red: never a digit
        d.rectangle(tile_box(*b), outline=(255, 0, 0), width=1)
    for b, lab in zip(s.boxes, s.labels):
        bx0, by0, _, _ = tb = tile_box(*b)
        d.rectangle(tb, outline=(0, 255, 0), width=1)
        d.text((bx0 + 1, by0), str(lab), fill=(255, 255, 0), font=small, stroke_width=1, stroke_fill=(0, 0, 0))
    text = "".join(str(lab) for _, lab in sorted(zip([b[0] for b in s.boxes], s.labels)))
    d.text((3, 1), f"{text or '-'}  {im.width}x{im.height}", fill=(0, 0, 0), font=font)
    return tile


def _label_font() -> str:
    files = synth_style.font_files()
    return next((f for f in files if os.path.basename(f) == "DejaVuSans.ttf"), files[0])


def write_preview(path, n: int = 48, seed: int = 0, cols: int = 8, modes: dict[str, float] | None = None,
                  letters: float | None = None, slats: float | None = None, half: float | None = None,
                  half_count: float = 0.5) -> None:
    """A PNG grid of n samples (train images 1..n of `seed`, mixed by `modes` as generate_dataset mixes
    them) with their digit boxes and labels drawn in green, lookalike boxes (letters, cut digits) in red.

    Size: min(cols, n) * PREVIEW_CELL[0] by ceil(n / cols) * PREVIEW_CELL[1] pixels."""
    if n < 1 or cols < 1:
        raise DataError(f"preview needs n >= 1 and cols >= 1, got n={n}, cols={cols}")
    modes = check_modes(modes)
    letters, slats, half = check_letters(letters), check_slats(slats), check_half_cuts(half, half_count)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    cw, ch = PREVIEW_CELL
    grid = Image.new("RGB", (cols * cw, rows * ch), (255, 255, 255))
    for i in range(n):
        with letter_suffixes(letters), slatted_walls(slats), half_cuts(*half):
            sample = render_mixed(sample_rng(seed, 0, i + 1), modes)
        tile = _draw_sample(sample, PREVIEW_CELL)
        grid.paste(tile, ((i % cols) * cw, (i // cols) * ch))
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        grid.save(tmp, format="PNG")
