"""SVHN format-1 `digitStruct.mat` -> COCO json in the course layout.

digitStruct.mat is a MATLAB v7.3 (HDF5) file: /digitStruct/name[i] references a uint16 character array
(the file name) and /digitStruct/bbox[i] references a group with datasets height, label, left, top,
width. When an image has one digit each dataset holds the number inline (shape (1, 1)); with several
digits it holds object references, one per digit, to (1, 1) datasets.

SVHN label 10 means digit 0, so digit d maps to category_id d + 1 (label 10 -> 1, label 1 -> 2, ...).
Image ids are the integer file stems ('12.png' -> 12). Widths and heights come from the image files
(image_dir, by default the folder holding the .mat, which is how the SVHN archives unpack); a missing
file is an error. SVHN boxes sometimes start at -1 or run past the border: the converter clips them
to the image (so the json always passes `load_coco`) and drops the rare box with no area left,
reporting both counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from digitdet.data.coco import NUM_CATEGORIES, PathLike, image_size
from digitdet.errors import DataError
from digitdet.io import write_json

FIELDS = ("height", "label", "left", "top", "width")


def svhn_label_to_category(label: int) -> int:
    """SVHN label 1..9 = digits 1..9, 10 = digit 0 -> category_id = digit + 1 (1..10)."""
    if not 1 <= label <= 10:
        raise ValueError(f"SVHN label {label} outside 1..10")
    digit = 0 if label == 10 else label
    return digit + 1


def categories() -> list[dict]:
    return [{"id": d + 1, "name": str(d), "supercategory": "digit"} for d in range(NUM_CATEGORIES)]


def _read_name(h5: Any, ref: Any) -> str:
    chars = np.asarray(h5[ref]).ravel()
    return "".join(chr(int(c)) for c in chars)


def _read_field(h5: Any, dataset: Any) -> list[float]:
    """One bbox field: inline values (one digit) or references to (1, 1) datasets (several digits)."""
    import h5py

    values = np.asarray(dataset[()])
    if h5py.check_dtype(ref=dataset.dtype) is not None:
        return [float(np.asarray(h5[ref]).ravel()[0]) for ref in values.ravel()]
    return [float(v) for v in values.ravel()]


def read_digit_struct(mat_path: PathLike) -> list[tuple[str, dict[str, list[float]]]]:
    """[(file name, {field: [value per digit]})] in file order."""
    import h5py

    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DataError(f"{mat_path}: digitStruct file not found")
    try:
        h5 = h5py.File(mat_path, "r")
    except OSError as exc:
        raise DataError(f"{mat_path}: not an HDF5 (MATLAB v7.3) digitStruct file ({exc})") from exc
    with h5:
        if "digitStruct/name" not in h5 or "digitStruct/bbox" not in h5:
            raise DataError(f"{mat_path}: missing /digitStruct/name or /digitStruct/bbox")
        names = np.asarray(h5["digitStruct/name"][()]).ravel()
        bboxes = np.asarray(h5["digitStruct/bbox"][()]).ravel()
        if len(names) != len(bboxes):
            raise DataError(f"{mat_path}: {len(names)} names but {len(bboxes)} bbox entries")
        out = []
        for i, (name_ref, bbox_ref) in enumerate(zip(names, bboxes)):
            name = _read_name(h5, name_ref)
            group = h5[bbox_ref]
            missing = [f for f in FIELDS if f not in group]
            if missing:
                raise DataError(f"{mat_path}: entry {i} ({name}): bbox lacks field(s) {', '.join(missing)}")
            fields = {f: _read_field(h5, group[f]) for f in FIELDS}
            if len({len(v) for v in fields.values()}) != 1:
                raise DataError(f"{mat_path}: entry {i} ({name}): bbox fields have different lengths")
            out.append((name, fields))
    return out


def convert_svhn(mat_path: PathLike, out_json: PathLike, image_dir: PathLike | None = None) -> dict:
    """Convert digitStruct.mat to COCO json at out_json (written atomically).

    Returns {'images', 'annotations', 'clipped', 'dropped', 'out_json'}.
    """
    mat_path = Path(mat_path)
    image_dir = Path(image_dir) if image_dir is not None else mat_path.parent
    entries = read_digit_struct(mat_path)

    images: list[dict] = []
    annotations: list[dict] = []
    seen: dict[int, str] = {}
    clipped = dropped = 0
    for name, fields in entries:
        stem = Path(name).stem
        try:
            image_id = int(stem)
        except ValueError:
            msg = f"image name {name!r} has no integer stem to use as image id"
            raise DataError(f"{mat_path}: {msg}") from None
        if image_id in seen:
            raise DataError(f"{mat_path}: image id {image_id} used by both {seen[image_id]} and {name}")
        seen[image_id] = name
        width, height = _image_size_or_error(image_dir / name, mat_path)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for left, top, w, h, label in zip(
            fields["left"], fields["top"], fields["width"], fields["height"], fields["label"]
        ):
            try:
                category = svhn_label_to_category(int(label))
            except ValueError as exc:
                raise DataError(f"{mat_path}: image {name}: {exc}") from None
            x1, y1 = max(left, 0.0), max(top, 0.0)
            x2, y2 = min(left + w, float(width)), min(top + h, float(height))
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                dropped += 1
                continue
            clipped += (x1, y1, x2, y2) != (left, top, left + w, top + h)
            bw, bh = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x1, y1, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )

    write_json(out_json, {"images": images, "annotations": annotations, "categories": categories()})
    return {
        "images": len(images),
        "annotations": len(annotations),
        "clipped": clipped,
        "dropped": dropped,
        "out_json": str(out_json),
    }


def _image_size_or_error(path: Path, mat_path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise DataError(f"{mat_path}: image {path} not found (pass image_dir= the folder with the images)")
    return image_size(path)
