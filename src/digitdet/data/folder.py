"""A folder of images for batch prediction, where one bad file never stops the run.

Every image file gets an id (from a COCO json, or from its name: data/images.py `list_images`) and an
`ImageRecord`. A file whose header cannot be read (empty, not an image, unsupported, unreadable, a
decompression bomb) is recorded with its one-line reason at construction and never handed out; one whose
pixels fail to decode later (a truncated JPEG) comes out of `__getitem__` as `(None, {'image_id',
'error'})` instead of raising, because an exception inside a DataLoader worker ends the whole loader.
`loaders.SkipFailed` drops those items from the batches and reports them.

Images over `max_pixels` are downscaled while loading (data/images.py `read_image`); `sizes` keeps each
original (width, height), so `loaders.WithScale` maps boxes back to the original pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from digitdet.data.coco import PathLike, _as_int, _pil_to_float, load_coco
from digitdet.data.images import image_size, list_images, read_image
from digitdet.errors import DataError


@dataclass
class ImageRecord:
    image_id: int
    path: Path
    size: tuple[int, int] | None  # original (width, height) from the header; None when unreadable
    error: str | None = None  # why the file is skipped (one line naming it), None when readable


class ImageFolder(torch.utils.data.Dataset):
    """The readable images as (float32 (3, H, W) in [0, 1] after `transforms`, {'boxes' (0, 4), 'labels'
    (0,), 'image_id'}); `records` holds every file, readable or not, in id order.

    `image_ids`, `file_paths` and `sizes` (original (width, height)) describe the readable files, index
    for index, like DigitDataset's, so loaders and galleries take either.
    """

    def __init__(self, image_dir: PathLike, entries: list[tuple[int, Path]],
                 transforms: Callable[[Image.Image, dict], tuple[Any, dict]] | None = None,
                 max_pixels: int | None = None) -> None:
        self.image_dir = Path(image_dir)
        self.transforms = transforms
        self.max_pixels = max_pixels
        self.records: list[ImageRecord] = []
        for image_id, path in sorted(entries, key=lambda e: e[0]):
            try:
                self.records.append(ImageRecord(image_id, path, image_size(path)))
            except DataError as exc:
                self.records.append(ImageRecord(image_id, path, None, str(exc)))
        self.readable = [r for r in self.records if r.error is None]
        self.image_ids = [r.image_id for r in self.readable]
        self.file_paths = [r.path for r in self.readable]
        self.sizes = [r.size for r in self.readable]

    @classmethod
    def from_folder(cls, image_dir: PathLike, **kwargs: Any) -> ImageFolder:
        """Every image file of the folder, ids from the file names (integer stems keep theirs)."""
        return cls(image_dir, list_images(image_dir), **kwargs)

    @classmethod
    def from_coco(cls, image_dir: PathLike, ann_file: PathLike, **kwargs: Any) -> ImageFolder:
        """The images a COCO json lists, with its ids. The json itself must be valid (DataError otherwise);
        its files are checked one by one like a folder's."""
        coco = load_coco(ann_file, image_dir, check_files=False)
        entries = [(_as_int(rec["id"]), Path(image_dir) / rec["file_name"]) for rec in coco.images]
        return cls(image_dir, entries, **kwargs)

    def __len__(self) -> int:
        return len(self.readable)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, dict]:
        record = self.readable[index]
        try:
            image = read_image(record.path, self.max_pixels)
        except DataError as exc:
            return None, {"image_id": record.image_id, "error": str(exc)}
        target = {"boxes": torch.zeros((0, 4), dtype=torch.float32), "labels": torch.zeros((0,), dtype=torch.int64),
                  "image_id": record.image_id}
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        if isinstance(image, Image.Image):
            image = _pil_to_float(image)
        return image, target

    def images_json(self, failed: set[int] | frozenset[int] = frozenset()) -> list[dict]:
        """A COCO `images` list of every file: id, file_name (relative to the folder), width, height; width
        and height are null for files that could not be read (at construction, or `failed` later)."""
        out = []
        for r in self.records:
            try:
                name = r.path.relative_to(self.image_dir).as_posix()
            except ValueError:
                name = str(r.path)
            ok = r.error is None and r.image_id not in failed
            width, height = r.size if ok and r.size else (None, None)
            out.append({"id": r.image_id, "file_name": name, "width": width, "height": height})
        return out
