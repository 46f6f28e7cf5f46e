"""Image files: reading them as RGB (whole, or downscaled to a pixel budget) and listing a folder of them.

Every problem with one file is a one-line `DataError` naming the file and the reason; callers decide
whether that stops the run (training, evaluation: fail fast) or skips the file (batch prediction).

Folder ids (no json): a file whose stem is a plain integer (`12.png`) keeps it as its image id; every other
image file (`house.jpg`, `IMG_0042.PNG`) gets the next ids after the largest integer one, in sorted name
order, so a folder of phone photos is numbered 1..N and no two files ever share an id.

Decompression bombs: a header claiming more than BOMB_PIXELS pixels is refused before any decoding.
PIL's own guard is set to the same figure (PIL then warns above it and refuses twice as much). PIL's
warnings while reading (that one, "Truncated File Read", "Corrupt EXIF data") are silenced: a file either
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

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitdet.errors import DataError, first_line

PathLike = str | os.PathLike
# Extensions a folder listing considers (any case); a README or a .json beside the images is ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# 200 MP: a 12000x9000 (108 MP) photo is read (downscaled); a header claiming more is a bomb, not a photo.
BOMB_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = BOMB_PIXELS  # deliberate, see the module docstring
_INTEGER_STEM = re.compile(r"[0-9]+")


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


def _open(path: Path) -> Image.Image:
    img = Image.open(path)
    w, h = img.size
    if w * h > BOMB_PIXELS:
        img.close()
        raise DataError(f"{path}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the {BOMB_PIXELS // 1_000_000} MP "
                        "limit for one image (a decompression bomb?)")
    return img


def _decode_error(path: Path, exc: Exception, prefix: str = "") -> DataError:
    """Decoders raise OSError for most damage, but struct.error, IndexError, EOFError... for some: every
    exception out of PIL on a file's bytes is that file's problem, said in one line with its type."""
    if isinstance(exc, DataError):
        return exc
    if isinstance(exc, PermissionError):
        return DataError(f"{prefix}{path}: cannot read the file (permission denied)")
    if isinstance(exc, UnidentifiedImageError):
        empty = path.is_file() and path.stat().st_size == 0
        why = "empty file (0 bytes)" if empty else "not an image file, or a format PIL cannot read"
        return DataError(f"{prefix}{path}: cannot decode image ({why})")
    typed = not isinstance(exc, OSError)
    return DataError(f"{prefix}{path}: cannot decode image ({first_line(exc, typed=typed)})")


def read_image(path: PathLike, max_pixels: int | None = None) -> Image.Image:
    """Load any image file as 8-bit RGB; with `max_pixels`, one larger than that is downscaled (aspect kept)
    to at most `max_pixels` pixels while loading: a JPEG is decoded at 1/2, 1/4 or 1/8 scale (never below
    the target size) so the full-size image is never decoded, other formats are decoded and then reduced.

    Grayscale and palette images are expanded; 16-bit grayscale ('I;16*', 'I') is scaled to 8 bit
    (x / 257, so 65535 -> 255); images with transparency (RGBA, LA, palette with a transparent colour)
    are composited on white, because the colour under fully transparent pixels is arbitrary (often
    black), and a white backdrop is what a viewer shows. Missing or undecodable files raise DataError.
    """
    path = Path(path)
    if not is_file(path):
        raise DataError(f"{path}: image file not found")
    try:
        with _quiet(), _open(path) as img:
            target = fit_size(img.size, max_pixels) if max_pixels else img.size
            if target == img.size:
                img.load()  # decode now so truncated files fail here, not later inside a DataLoader worker
                return _to_rgb(img)
            img.draft(None, target)  # JPEG only (a no-op elsewhere): decode at a reduced scale >= target
            img.load()
            rgb = img if img.mode == "RGB" else _to_rgb(img)
            return rgb.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    except Exception as exc:  # any decoder failure is this file's: see _decode_error
        raise _decode_error(path, exc) from exc


def fit_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most `max_pixels` pixels; unchanged when it fits."""
    w, h = size
    if w * h <= max_pixels:
        return w, h
    s = math.sqrt(max_pixels / (w * h))
    return max(1, math.floor(w * s)), max(1, math.floor(h * s))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "F":
        # Float images have no agreed range; assume 0..1 if it fits, else 0..255.
        arr = np.asarray(img, dtype=np.float64)
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
    """(width, height) from the file header only (fast: no pixel decoding); bombs and undecodable
    headers raise DataError."""
    if not is_file(path):
        raise DataError(f"{prefix}{path}: image file not found")
    try:
        with _quiet(), _open(path) as img:
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
        with _quiet(), Image.open(path) as img:
            value = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - no or corrupt EXIF: the pixels as stored
        return None
    return int(value) if value in ORIENTATION_FIX or value == 1 else None


def upright(image: Image.Image, size: tuple[int, int], orientation: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """The image (and its original (width, height)) turned upright by its EXIF orientation."""
    if orientation not in ORIENTATION_FIX:
        return image, size
    return image.transpose(ORIENTATION_FIX[orientation]), ((size[1], size[0]) if orientation >= 5 else size)
