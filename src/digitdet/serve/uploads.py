"""Uploaded bytes -> an RGB PIL image, by the same code as digitdet.data.images.read_image (open_image's
checks: the formats of IMAGE_SUFFIXES only, decompression bombs, sides beyond 20:1; load_rgb: modes,
transparency on white, downscaled to the load budget in the image's own mode), plus what a photo from a
phone needs: its EXIF orientation is applied, so the boxes match the picture a browser shows.

Every problem is an UploadError with an HTTP status and a one-line message naming the upload.

Where the bytes are: the request body is parsed by app.py into in-memory files (no temporary file on disk:
the spooling threshold is the request limit), read here from memory, and dropped with the request. Nothing
is written to disk and nothing is kept.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from PIL import Image

from digitdet.data.images import BadShape, NotAnImage, OverLimit, _quiet, load_rgb, open_image, upright
from digitdet.errors import DataError, first_line

# open_image's refusals -> HTTP: not an image 415, too many pixels (or per byte) 413, a strip 422.
STATUS = {NotAnImage: 415, OverLimit: 413, BadShape: 422}


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


def _open(fp: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    nbytes = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    try:
        return open_image(fp, name, max_pixels=max_pixels, nbytes=nbytes)
    except DataError as exc:
        raise UploadError(STATUS.get(type(exc), 415), str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this upload's problem
        raise UploadError(415, f"{name}: cannot decode image ({first_line(exc, typed=True)})") from None


def check(fp: BinaryIO, name: str, max_pixels: int) -> None:
    """open_image's checks (the header only: format, pixels, bombs, sides), as the app runs them before an
    upload takes a place in the pool: a refusal never waits for a worker."""
    with _quiet(), _open(fp, name, max_pixels):
        pass


def decode(fp: BinaryIO, name: str, max_pixels: int, load_pixels: int | None = None) -> tuple[Image.Image, tuple]:
    """(RGB image, (width, height) of the upright photo) from an open upload. A photo over `max_pixels`
    (its header says so; nothing is decoded) is refused with 413, as is a decompression bomb; one over
    `load_pixels` is downscaled while loading (data.images.load_rgb), the second value then gives the size
    boxes map to."""
    with _quiet():
        img = _open(fp, name, max_pixels)
        with img:
            size = img.size
            try:
                orientation = img.getexif().get(0x0112)
            except Exception:  # noqa: BLE001 - corrupt EXIF: read the pixels as stored
                orientation = None
            try:
                rgb = load_rgb(img, load_pixels)
            except Exception as exc:  # noqa: BLE001 - truncated or damaged data
                raise UploadError(422, f"{name}: cannot decode image ({first_line(exc, typed=True)})") from None
    return upright(rgb, size, orientation)  # as a browser shows it, EXIF orientation applied
