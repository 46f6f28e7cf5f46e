"""Image files: reading them as RGB (whole, or downscaled to a pixel budget) and listing a folder of them.

Every problem with one file is a one-line `DataError` naming the file and the reason; callers decide
whether that stops the run (training, evaluation: fail fast) or skips the file (batch prediction).

Folder ids (no json): a file whose stem is a plain integer (`12.png`) keeps it as its image id; every other
image file (`house.jpg`, `IMG_0042.PNG`) gets the next ids after the largest integer one, in sorted name
order, so a folder of phone photos is numbered 1..N and no two files ever share an id.

What is decoded (open_image + load_rgb, shared by read_image here and by `digitdet serve`'s uploads):
- only the formats of IMAGE_SUFFIXES (IMAGE_FORMATS; a phone's multi-picture JPEG, MPO, is a JPEG);
- decompression bombs are refused from the header, before any decoding: more than BOMB_PIXELS pixels
  (PIL's own guard is set to the same figure; it warns above it and refuses twice as much), or, for an
  image over RATIO_FROM_PIXELS, more than BOMB_RATIO pixels per byte of file (a 4.9 kB 1-bit PNG claiming
  39.7 MP has 8,100: real photos have tens at most, flat graphics a few hundred);
- sides beyond MAX_ASPECT:1 are refused (a 30000x1 strip is no photo; the pyramid would run it at ~8 scales);
- an image over the pixel budget is made small in its own (narrow) mode before it becomes RGB: a JPEG is
  decoded at 1/2..1/8 scale; other formats are decoded whole in their stored mode (1 byte a pixel for
  1-bit, gray and palette; 2 for 16-bit gray), then reduced; 16-bit is brought to 8 bits in integers.
PIL's warnings while reading ("Truncated File Read", "Corrupt EXIF data") are silenced: a file either
reads or fails with its one DataError line, so a batch run prints one line per bad file and nothing else.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitdet.errors import DataError, first_line

PathLike = str | os.PathLike
# Extensions a folder listing considers (any case); a README or a .json beside the images is ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# PIL's names for those formats: the only ones Image.open may identify (a .png that is a PSD is refused).
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
# 200 MP: a 12000x9000 (108 MP) photo is read (downscaled); a header claiming more is a bomb, not a photo.
BOMB_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = BOMB_PIXELS  # deliberate, see the module docstring
# Over 4 MP, more than 1,000 pixels per byte of file is a bomb (deflate stops near 1,030 bytes per byte).
BOMB_RATIO = 1_000
RATIO_FROM_PIXELS = 4_000_000
# The long side at most 20 times the short one (panoramas are 4-10:1; a house-number plaque 2-6:1).
MAX_ASPECT = 20
_INTEGER_STEM = re.compile(r"[0-9]+")


class NotAnImage(DataError):
    """Not an image file, or not one of IMAGE_FORMATS (`digitdet serve`: 415)."""


class OverLimit(DataError):
    """More pixels than a limit allows, from the header: too many, or too many per byte (serve: 413)."""


class BadShape(DataError):
    """Sides beyond MAX_ASPECT:1 (serve: 422)."""


def is_file(path: PathLike) -> bool:
    """Path.is_file() that is False, not an OSError, for a name the OS rejects (too long: ENAMETOOLONG)."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """PIL's warnings about damage it works around ("Truncated File Read", "Corrupt EXIF data") off: the
    image either decodes (then the user has it) or fails with its one DataError line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open(source: PathLike | BinaryIO, name: str, max_pixels: int | None = None) -> Image.Image:
    """The header read (no pixels decoded), one of IMAGE_FORMATS, at most `max_pixels` (<= BOMB_PIXELS)."""
    limit = min(max_pixels or BOMB_PIXELS, BOMB_PIXELS)
    try:
        img = Image.open(source, formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: cannot decode image (not an image file, or not one of "
                         f"{', '.join(IMAGE_FORMATS)})") from None
    except Image.DecompressionBombError as exc:
        raise OverLimit(f"{name}: too many pixels ({first_line(exc)})") from None
    w, h = img.size
    if w * h > limit:
        img.close()
        bomb = " (a decompression bomb?)" if limit == BOMB_PIXELS else ""
        raise OverLimit(f"{name}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the {limit / 1e6:g} MP limit "
                        f"for one image{bomb}")
    return img


def open_image(source: PathLike | BinaryIO, name: str, *, max_pixels: int | None = None,
               nbytes: int | None = None) -> Image.Image:
    """An image file (a path or an open binary file of `nbytes` bytes) opened for decoding with load_rgb,
    after every check the header allows (see the module doc); `name` starts each error's line.
    Raises NotAnImage, OverLimit (`max_pixels`, default BOMB_PIXELS; BOMB_RATIO) or BadShape."""
    if nbytes == 0:
        raise NotAnImage(f"{name}: cannot decode image (empty file (0 bytes))")
    img = _open(source, name, max_pixels)
    w, h = img.size
    try:
        if max(w, h) > MAX_ASPECT * min(w, h):
            raise BadShape(f"{name}: {w}x{h} pixels, sides {max(w, h) / min(w, h):.0f}:1, beyond the "
                           f"{MAX_ASPECT}:1 limit (a strip, not a photo)")
        if nbytes and w * h > RATIO_FROM_PIXELS and w * h > BOMB_RATIO * nbytes:
            raise OverLimit(f"{name}: {w}x{h} pixels ({w * h / 1e6:.1f} MP) in {nbytes:,} bytes, "
                            f"{w * h / nbytes:,.0f} pixels per byte, over the limit of {BOMB_RATIO:,} for an image "
                            f"over {RATIO_FROM_PIXELS / 1e6:g} MP (a decompression bomb?)")
    except DataError:
        img.close()
        raise
    return img


def load_rgb(img: Image.Image, max_pixels: int | None = None) -> Image.Image:
    """Decode an image from open_image as 8-bit RGB, downscaled (aspect kept) to at most `max_pixels`.

    Over the budget, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (never below the target size); every
    image is then resized in its own mode, or the narrowest one PIL resizes (1-bit -> gray, 16-bit -> 8-bit
    gray, palette -> RGB(A)), and becomes RGB only at the target size. Raises what the decoder raises."""
    target = fit_size(img.size, max_pixels) if max_pixels else img.size
    if target != img.size:
        img.draft(None, target)  # JPEG only (a no-op elsewhere): decode at a reduced scale >= target
    img.load()  # decode now so truncated files fail here, not later inside a DataLoader worker
    if target != img.size:
        if img.mode == "1":
            img = img.convert("L")
        elif img.mode.startswith("I;16"):
            img = _to_8bit(img)
        elif img.mode in ("P", "PA"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return _to_rgb(img)


def read_image(path: PathLike, max_pixels: int | None = None) -> Image.Image:
    """Load any image file as 8-bit RGB; with `max_pixels`, one larger than that is downscaled (aspect kept)
    to at most `max_pixels` pixels while loading (load_rgb), after open_image's checks.

    Grayscale and palette images are expanded; 16-bit grayscale ('I;16*', 'I') is scaled to 8 bit
    (x / 257 rounded, so 65535 -> 255); images with transparency (RGBA, LA, palette with a transparent
    colour) are composited on white, because the colour under fully transparent pixels is arbitrary (often
    black), and a white backdrop is what a viewer shows. Missing or undecodable files raise DataError.
    """
    path = Path(path)
    if not is_file(path):
        raise DataError(f"{path}: image file not found")
    try:
        with _quiet(), open_image(path, str(path), nbytes=path.stat().st_size) as img:
            return load_rgb(img, max_pixels)
    except Exception as exc:  # any decoder failure is this file's: see _decode_error
        raise _decode_error(path, exc) from exc


def _decode_error(path: Path, exc: Exception, prefix: str = "") -> DataError:
    """Decoders raise OSError for most damage, but struct.error, IndexError, EOFError... for some: every
    exception out of PIL on a file's bytes is that file's problem, said in one line with its type."""
    if isinstance(exc, DataError):
        return exc  # it names the file (with the prefix) already
    if isinstance(exc, PermissionError):
        return DataError(f"{prefix}{path}: cannot read the file (permission denied)")
    typed = not isinstance(exc, OSError)
    return DataError(f"{prefix}{path}: cannot decode image ({first_line(exc, typed=typed)})")


def fit_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most `max_pixels` pixels; unchanged when it fits."""
    w, h = size
    if w * h <= max_pixels:
        return w, h
    s = math.sqrt(max_pixels / (w * h))
    return max(1, math.floor(w * s)), max(1, math.floor(h * s))


def _to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit ('I;16*') or 32-bit integer ('I') gray image as 'L': round(x / 257) of x clipped to
    0..65535, in 16-bit integers, a band of rows at a time (no full-size copy but the 1-byte result)."""
    out = Image.new("L", img.size)
    rows = max(1, (1 << 18) // max(1, img.width))  # bands of ~256k pixels: ~2.5 MB of temporaries
    for y in range(0, img.height, rows):
        band = np.asarray(img.crop((0, y, img.width, min(y + rows, img.height))))
        if band.dtype.kind != "u" or band.dtype.itemsize != 2:  # 'I': 32-bit signed
            band = np.clip(band, 0, 65535).astype(np.uint16)
        q, r = np.divmod(band, np.uint16(257))  # x = 257 q + r; round(x / 257) = q + (r >= 129)
        out.paste(Image.fromarray((q + (r >= 129)).astype(np.uint8), mode="L"), (0, y))
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode.startswith("I;16") or img.mode == "I":
        return _to_8bit(img).convert("RGB")
    if img.mode == "F":
        # Float images have no agreed range; assume 0..1 if it fits, else 0..255.
        arr = np.asarray(img, dtype=np.float32)
        scale = 255.0 if arr.size and np.nanmax(arr) <= 1.0 else 1.0
        arr = np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def image_size(path: Path, prefix: str = "") -> tuple[int, int]:
    """(width, height) from the file header only (fast: no pixel decoding); bombs, other formats and
    undecodable headers raise DataError (open_image's other limits are for decoding: see read_image)."""
    if not is_file(path):
        raise DataError(f"{prefix}{path}: image file not found")
    try:
        if path.stat().st_size == 0:
            raise NotAnImage(f"{prefix}{path}: cannot decode image (empty file (0 bytes))")
        with _quiet(), _open(path, f"{prefix}{path}") as img:
            return img.size
    except Exception as exc:  # see _decode_error
        raise _decode_error(path, exc, prefix) from exc


def assign_ids(paths: list[Path]) -> list[tuple[int, Path]]:
    """(image_id, path) sorted by id: integer stems keep theirs (the first in name order when two spell the
    same number, as 7.png and 007.jpg), all others get ids after the largest integer id, in name order."""
    by_name = sorted(paths, key=lambda p: p.name)
    ids: dict[int, Path] = {}
    for path in by_name:
        if _INTEGER_STEM.fullmatch(path.stem) and int(path.stem) not in ids:
            ids[int(path.stem)] = path
    named = [p for p in by_name if p not in set(ids.values())]
    start = max(ids, default=0) + 1
    ids.update({start + k: p for k, p in enumerate(named)})
    return sorted(ids.items())


def image_files_in(folder: Path) -> list[Path]:
    """The files of `folder` with an image suffix (any case), hidden ones skipped, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_images(image_dir: PathLike) -> list[tuple[int, Path]]:
    """The image files of a folder without json as (image_id, path) sorted by id (see assign_ids).

    Only files with an image suffix count (a README beside them is ignored); hidden files are skipped.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: image folder not found")
    files = image_files_in(image_dir)
    if not files:
        raise DataError(f"{image_dir}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return assign_ids(files)


# EXIF orientation (tag 0x0112) -> the transpose that shows the photo upright, as a browser or a phone does.
ORIENTATION_FIX = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                   6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def exif_orientation(path: PathLike) -> int | None:
    """The file's EXIF orientation (1-8), or None when it has none or it cannot be read."""
    try:
        with _quiet(), Image.open(path, formats=IMAGE_FORMATS) as img:
            value = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - no or corrupt EXIF: the pixels as stored
        return None
    return int(value) if value in ORIENTATION_FIX or value == 1 else None


def upright(image: Image.Image, size: tuple[int, int], orientation: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """The image (and its original (width, height)) turned upright by its EXIF orientation."""
    if orientation not in ORIENTATION_FIX:
        return image, size
    return image.transpose(ORIENTATION_FIX[orientation]), ((size[1], size[0]) if orientation >= 5 else size)
