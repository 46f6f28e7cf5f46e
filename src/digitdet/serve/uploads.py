"""Uploaded bytes -> an RGB PIL image, by the same rules as digitdet.data.images.read_image (modes,
transparency on white, downscaled to predict.max_pixels while loading), plus what a photo from a phone
needs: its EXIF orientation is applied, so the boxes match the picture a browser shows.

Every problem is an UploadError with an HTTP status and a one-line message naming the upload. Nothing is
written to disk here and nothing is kept: the file object is read and dropped.
"""

from __future__ import annotations

from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from digitdet.data.images import _quiet, _to_rgb, fit_size, upright
from digitdet.errors import first_line


class UploadError(Exception):
    """A request the server refuses: `status` (4xx) and a one-line `message` for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def clean_name(filename: str | None) -> str:
    """The upload's file name for the JSON: the last path component, printable, at most 120 characters
    (never used as a path)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:120]
    return name or "image"


def decode(fp: BinaryIO, name: str, max_pixels: int, load_pixels: int | None = None) -> tuple[Image.Image, tuple]:
    """(RGB image, (width, height) of the upright photo) from an open upload. A photo over `max_pixels`
    (its header says so; nothing is decoded) is refused with 413; one over `load_pixels` is downscaled
    while loading (JPEG: decoded at 1/2..1/8 scale), the second value then gives the size boxes map to."""
    with _quiet():
        try:
            img = Image.open(fp)
        except UnidentifiedImageError:
            raise UploadError(415, f"{name}: not an image (or a format PIL cannot read)") from None
        except Image.DecompressionBombError as exc:
            raise UploadError(413, f"{name}: too many pixels ({first_line(exc)})") from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this upload's problem
            raise UploadError(415, f"{name}: cannot decode image ({first_line(exc, typed=True)})") from None
        with img:
            w, h = img.size
            if w * h > max_pixels:
                raise UploadError(413, f"{name}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the "
                                       f"{max_pixels / 1e6:g} MP limit for one image")
            try:
                orientation = img.getexif().get(0x0112)
            except Exception:  # noqa: BLE001 - corrupt EXIF: read the pixels as stored
                orientation = None
            target = fit_size(img.size, load_pixels) if load_pixels else img.size
            try:
                if target != img.size:
                    img.draft(None, target)  # JPEG only: decode at a reduced scale >= target
                img.load()
                rgb = _to_rgb(img)
            except Exception as exc:  # noqa: BLE001 - truncated or damaged data
                raise UploadError(422, f"{name}: cannot decode image ({first_line(exc, typed=True)})") from None
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return upright(rgb, (w, h), orientation)  # as a browser shows it, EXIF orientation applied
