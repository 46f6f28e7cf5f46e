"""The course dataset layout: reading, validating, and serving it as (image, target) pairs.

Layout: DATA_DIR/{train,valid,test}/*.png plus DATA_DIR/{train,valid}.json (test.json optional), COCO
style: `bbox` is [x, y, w, h] in pixels and `category_id` 1..10 stands for digits 0..9. The model uses
labels 1..10 directly (0 is its background), so label = category_id and nothing is remapped here.

Every problem raises one `DataError` line naming the json/image file and the annotation/image id, e.g.
`data/valid.json: annotation 17 (image 5): category_id 11 outside 1..10`.

Boxes that overshoot the image a little (SVHN has many boxes starting at -1 or ending a pixel past
the border) are clipped and counted in `CocoData.clipped`. The tolerance per side is
max(OVERSHOOT_PX, OVERSHOOT_FRAC x the box side on that axis); a larger overshoot is an error because
it means the box or the image size is wrong, not sloppy labelling.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from digitdet.data.images import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # re-exported: reading lives in images.py
from digitdet.data.images import image_size, is_file, list_images, read_image
from digitdet.errors import DataError

SPLITS = ("train", "valid", "test")
NUM_CATEGORIES = 10  # category_id 1..10 = digits 0..9
LOOKALIKE_LABEL = NUM_CATEGORIES + 1  # training label of a lookalike box (never a category)
OVERSHOOT_PX = 2.0
OVERSHOOT_FRAC = 0.10

PathLike = str | os.PathLike


def split_paths(data_dir: PathLike, split: str) -> tuple[Path, Path | None]:
    """(DATA_DIR/split, DATA_DIR/split.json or None when that json does not exist).

    The image folder must exist; a json without its folder is an error too.
    """
    data_dir = Path(data_dir)
    image_dir = data_dir / split
    json_path = data_dir / f"{split}.json"
    if not image_dir.is_dir():
        hint = f" (but {json_path.name} exists)" if json_path.is_file() else ""
        raise DataError(f"{image_dir}: image folder for split '{split}' not found{hint}")
    return image_dir, (json_path if json_path.is_file() else None)


@dataclass
class CocoData:
    """Validated annotations of one split.

    boxes[image_id] is a float32 (N, 4) array in xyxy pixels (clipped to the image); labels[image_id]
    is int64 (N,) in 1..10. Every image has an entry (empty arrays for images without digits).
    lookalikes[image_id]: float32 (M, 4) xyxy boxes of glyphs that look like a digit but are none, from
    digitdet's own top-level "lookalikes" list (the synthetic data writes it; COCO tools ignore it).
    """

    images: list[dict]
    boxes: dict[int, np.ndarray]
    labels: dict[int, np.ndarray]
    raw: dict
    clipped: int
    lookalikes: dict[int, np.ndarray] = field(default_factory=dict)


def _as_int(value: Any) -> int | None:
    """An integer (or an integral float such as 3.0 written by numpy-based tools), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(json_path: Path) -> dict:
    if not json_path.is_file():
        raise DataError(f"{json_path}: annotation file not found")
    try:
        text = json_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{json_path}: cannot read annotation file ({exc})") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise DataError(f"{json_path}: invalid JSON at {where}: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{json_path}: top level must be an object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in raw:
            raise DataError(f"{json_path}: missing key '{key}'")
        if not isinstance(raw[key], list):
            raise DataError(f"{json_path}: '{key}' must be a list")
    return raw


def _check_image_record(json_path: Path, index: int, rec: Any) -> tuple[int, int, int]:
    if not isinstance(rec, dict):
        raise DataError(f"{json_path}: images[{index}] is not an object")
    missing = [k for k in ("id", "file_name", "width", "height") if k not in rec]
    name = f"image {rec['id']}" if "id" in rec else f"images[{index}]"
    if missing:
        raise DataError(f"{json_path}: {name}: missing key(s) {', '.join(missing)}")
    image_id = _as_int(rec["id"])
    if image_id is None:
        raise DataError(f"{json_path}: images[{index}]: id {rec['id']!r} is not an integer")
    if not isinstance(rec["file_name"], str) or not rec["file_name"]:
        raise DataError(f"{json_path}: image {image_id}: file_name {rec['file_name']!r} is not a file name")
    width, height = _as_int(rec["width"]), _as_int(rec["height"])
    if width is None or height is None or width <= 0 or height <= 0:
        size = f"{rec['width']!r}x{rec['height']!r}"
        raise DataError(f"{json_path}: image {image_id}: width/height {size} must be positive integers")
    return image_id, width, height


def _check_box(where: str, bbox: Any, width: int, height: int) -> tuple[list[float], bool]:
    """COCO [x, y, w, h] -> clipped [x1, y1, x2, y2] and whether clipping was needed."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DataError(f"{where}: bbox {bbox!r} must be 4 numbers [x, y, w, h]")
    if not all(_is_number(v) for v in bbox):
        raise DataError(f"{where}: bbox {bbox!r} has a non-numeric or non-finite value")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: degenerate bbox {bbox!r} (width and height must be > 0)")
    x1, y1, x2, y2 = x, y, x + w, y + h
    tol_x = max(OVERSHOOT_PX, OVERSHOOT_FRAC * w)
    tol_y = max(OVERSHOOT_PX, OVERSHOOT_FRAC * h)
    over = max(-x1, x2 - width, 0.0), max(-y1, y2 - height, 0.0)
    if over[0] > tol_x or over[1] > tol_y:
        raise DataError(
            f"{where}: bbox {bbox!r} lies outside the {width}x{height} image "
            f"by {max(over[0], over[1]):.1f} px (tolerance {OVERSHOOT_PX:g} px or "
            f"{OVERSHOOT_FRAC:.0%} of the box side)"
        )
    clipped = [
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    ]
    if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
        raise DataError(f"{where}: bbox {bbox!r} has no area inside the {width}x{height} image")
    return clipped, clipped != [x1, y1, x2, y2]


def load_coco(json_path: PathLike, image_dir: PathLike | None = None, check_files: bool = True) -> CocoData:
    """Read and validate one split's COCO json; see the module docstring for the rules.

    image_dir defaults to the folder named like the json (train.json -> train/). With check_files,
    every image file must exist and its header size must equal the json width/height (pixels are not
    decoded here; `check_dataset` does that).
    """
    json_path = Path(json_path)
    image_dir = Path(image_dir) if image_dir is not None else json_path.parent / json_path.stem
    raw = _read_json(json_path)

    sizes: dict[int, tuple[int, int]] = {}
    for index, rec in enumerate(raw["images"]):
        image_id, width, height = _check_image_record(json_path, index, rec)
        if image_id in sizes:
            raise DataError(f"{json_path}: duplicate image id {image_id}")
        sizes[image_id] = (width, height)
        if check_files:
            path = image_dir / rec["file_name"]
            if not is_file(path):
                raise DataError(f"{json_path}: image {image_id}: file {path} not found")
            real = image_size(path, prefix=f"{json_path}: image {image_id}: ")
            if real != (width, height):
                what = f"json says {width}x{height} but {path} is {real[0]}x{real[1]}"
                raise DataError(f"{json_path}: image {image_id}: {what}")

    boxes: dict[int, list[list[float]]] = {i: [] for i in sizes}
    labels: dict[int, list[int]] = {i: [] for i in sizes}
    seen_ann: set[int] = set()
    clipped = 0
    for index, ann in enumerate(raw["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{json_path}: annotations[{index}] is not an object")
        name = f"annotation {ann['id']}" if "id" in ann else f"annotations[{index}]"
        missing = [k for k in ("id", "image_id", "bbox", "category_id") if k not in ann]
        if missing:
            raise DataError(f"{json_path}: {name}: missing key(s) {', '.join(missing)}")
        ann_id, image_id = _as_int(ann["id"]), _as_int(ann["image_id"])
        if ann_id is None:
            raise DataError(f"{json_path}: annotations[{index}]: id {ann['id']!r} is not an integer")
        if ann_id in seen_ann:
            raise DataError(f"{json_path}: duplicate annotation id {ann_id}")
        seen_ann.add(ann_id)
        if image_id is None or image_id not in sizes:
            raise DataError(f"{json_path}: annotation {ann_id}: unknown image_id {ann['image_id']!r}")
        where = f"{json_path}: annotation {ann_id} (image {image_id})"
        category = _as_int(ann["category_id"])
        if category is None or not 1 <= category <= NUM_CATEGORIES:
            raise DataError(f"{where}: category_id {ann['category_id']!r} outside 1..{NUM_CATEGORIES}")
        box, was_clipped = _check_box(where, ann["bbox"], *sizes[image_id])
        clipped += was_clipped
        boxes[image_id].append(box)
        labels[image_id].append(category)

    return CocoData(
        images=list(raw["images"]),
        boxes={i: np.asarray(b, dtype=np.float32).reshape(-1, 4) for i, b in boxes.items()},
        labels={i: np.asarray(c, dtype=np.int64).reshape(-1) for i, c in labels.items()},
        raw=raw,
        clipped=clipped,
        lookalikes=_lookalikes(json_path, raw, sizes),
    )


def _lookalikes(json_path: Path, raw: dict, sizes: dict[int, tuple[int, int]]) -> dict[int, np.ndarray]:
    """The optional top-level "lookalikes": [{"image_id", "bbox" [x, y, w, h]}], validated like boxes."""
    items = raw.get("lookalikes", [])
    if not isinstance(items, list):
        raise DataError(f"{json_path}: 'lookalikes' must be a list")
    out: dict[int, list[list[float]]] = {}
    for index, item in enumerate(items):
        where = f"{json_path}: lookalikes[{index}]"
        if not isinstance(item, dict) or "image_id" not in item or "bbox" not in item:
            raise DataError(f"{where}: must be an object with 'image_id' and 'bbox'")
        image_id = _as_int(item["image_id"])
        if image_id is None or image_id not in sizes:
            raise DataError(f"{where}: unknown image_id {item['image_id']!r}")
        out.setdefault(image_id, []).append(_check_box(where, item["bbox"], *sizes[image_id])[0])
    return {i: np.asarray(b, dtype=np.float32).reshape(-1, 4) for i, b in out.items()}


def _pil_to_float(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 (3, H, W) in [0, 1]."""
    arr = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


class DigitDataset(torch.utils.data.Dataset):
    """One split as (image, target) pairs for torchvision detection models.

    image: float32 (3, H, W) in [0, 1] after `transforms` (no normalization: the model does that).
    target: {'boxes': float32 (N, 4) xyxy pixels, 'labels': int64 (N,) in 1..10, 'image_id': int}.
    With `lookalikes` the split's lookalike boxes are added with label 11 (model.lookalike_class).
    Without ann_file the targets are empty and ids come from `list_images` (integer stems keep theirs).
    `sizes` holds each original (width, height), before any upsampling.
    """

    def __init__(
        self,
        image_dir: PathLike,
        ann_file: PathLike | None = None,
        transforms: Callable[[Image.Image, dict], tuple[Any, dict]] | None = None,
        check_files: bool = True,
        lookalikes: bool = False,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.lookalikes = lookalikes
        self.transforms = transforms
        self.ann_file = Path(ann_file) if ann_file is not None else None
        self.coco: CocoData | None = None
        if ann_file is not None:
            self.coco = load_coco(ann_file, self.image_dir, check_files=check_files)
            self.image_ids = [_as_int(rec["id"]) for rec in self.coco.images]
            self.file_paths = [self.image_dir / rec["file_name"] for rec in self.coco.images]
            self.sizes = [(_as_int(rec["width"]), _as_int(rec["height"])) for rec in self.coco.images]
        else:
            listed = list_images(self.image_dir)
            self.image_ids = [i for i, _ in listed]
            self.file_paths = [p for _, p in listed]
            self.sizes = [image_size(p) for p in self.file_paths]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image_id = self.image_ids[index]
        image = read_image(self.file_paths[index])
        if self.coco is not None:
            boxes = torch.from_numpy(self.coco.boxes[image_id].copy())
            labels = torch.from_numpy(self.coco.labels[image_id].copy())
            extra = self.coco.lookalikes.get(image_id) if self.lookalikes else None
            if extra is not None and len(extra):
                boxes = torch.cat([boxes, torch.from_numpy(extra.copy())])
                labels = torch.cat([labels, torch.full((len(extra),), LOOKALIKE_LABEL, dtype=torch.int64)])
        else:
            boxes = torch.zeros((0, 4), dtype=torch.float32)
            labels = torch.zeros((0,), dtype=torch.int64)
        target = {"boxes": boxes, "labels": labels, "image_id": image_id}
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        if isinstance(image, Image.Image):  # transforms that stay in PIL (or none at all)
            image = _pil_to_float(image)
        return image, target


def collate_detection(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Keep images as a list: detection models take differently sized images (no stacking)."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets
