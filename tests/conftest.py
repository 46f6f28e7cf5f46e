"""Shared fixtures. Names are specific (coco_dir_factory, svhn4_dir) so other test files can add theirs."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"

# A small valid split: image 1 has two digits, image 2 one, image 3 none (a valid sample too).
DEFAULT_IMAGES = [(1, 40, 20), (2, 30, 30), (3, 25, 25)]
DEFAULT_ANNOTATIONS = [
    {"id": 1, "image_id": 1, "bbox": [2.0, 3.0, 8.0, 12.0], "category_id": 2},
    {"id": 2, "image_id": 1, "bbox": [12.0, 3.0, 9.0, 12.0], "category_id": 10},
    {"id": 3, "image_id": 2, "bbox": [5.0, 5.0, 10.0, 20.0], "category_id": 1},
]


def write_png(path: Path, width: int, height: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def coco_json(images, annotations) -> dict:
    anns = []
    for ann in annotations:
        ann = dict(ann)
        if isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
            # Bad boxes (the validation tests) simply get no area.
            with contextlib.suppress(TypeError, ValueError):
                ann.setdefault("area", float(ann["bbox"][2]) * float(ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
        anns.append(ann)
    return {
        "images": [{"id": i, "file_name": f"{i}.png", "width": w, "height": h} for i, w, h in images],
        "annotations": anns,
        "categories": [{"id": d + 1, "name": str(d)} for d in range(10)],
    }


@pytest.fixture
def coco_dir_factory(tmp_path):
    """make(split='train', images=..., annotations=..., edit=None) -> json path under tmp_path/'data'.

    Writes one noise PNG per image record and the json; `edit(raw_dict)` may corrupt the json first.
    """
    root = tmp_path / "data"

    def make(split="train", images=None, annotations=None, edit=None):
        images = DEFAULT_IMAGES if images is None else images
        annotations = DEFAULT_ANNOTATIONS if annotations is None else annotations
        for image_id, width, height in images:
            write_png(root / split / f"{image_id}.png", width, height, seed=image_id)
        raw = coco_json(images, annotations)
        if edit is not None:
            edit(raw)
        json_path = root / f"{split}.json"
        json_path.write_text(json.dumps(raw, indent=1))
        return json_path

    return make


@pytest.fixture
def svhn4_dir() -> Path:
    path = SHARED / "fixtures" / "svhn4"
    if not (path / "train.json").is_file():
        pytest.skip(f"real SVHN fixture not found at {path} (needs the shared/ checkout beside main/)")
    return path
