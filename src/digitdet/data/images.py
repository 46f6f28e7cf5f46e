"""Image files: reading them as 8-bit RGB and listing a folder of them (moved out of coco.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from digitdet.errors import DataError

PathLike = str | os.PathLike
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_image(path: PathLike) -> Image.Image:
    """Load any image file as 8-bit RGB.

    Grayscale and palette images are expanded; 16-bit grayscale ('I;16*', 'I') is scaled to 8 bit
    (x / 257, so 65535 -> 255); images with transparency (RGBA, LA, palette with a transparent colour)
    are composited on white, because the colour under fully transparent pixels is arbitrary (often
    black), and a white backdrop is what a viewer shows. Missing or undecodable files raise DataError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so truncated files fail here, not later inside a DataLoader worker
            return _to_rgb(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from exc


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
    """(width, height) from the file header only (fast: no pixel decoding)."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{prefix}{path}: cannot decode image ({exc})") from exc


def list_images(image_dir: PathLike) -> list[tuple[int, Path]]:
    """Images of a folder without json, as (image_id, path) sorted by id; image_id = integer file stem.

    Only files with an image suffix count (a README beside them is ignored); hidden files are skipped.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: image folder not found")
    found: dict[int, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            image_id = int(path.stem)
        except ValueError:
            raise DataError(
                f"{path}: file name must be an integer image id (like 12.png) when there is no json"
            ) from None
        if image_id in found:
            raise DataError(f"{path}: image id {image_id} already used by {found[image_id].name}")
        found[image_id] = path
    if not found:
        raise DataError(f"{image_dir}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return sorted(found.items())
