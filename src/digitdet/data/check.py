"""`digitdet check DATA_DIR`: validate every split and summarize it (sizes that matter for anchors/upsample).

Fails with a DataError on the first problem (see coco.py for the rules); otherwise returns a summary
dict that `format_summary` prints as a table.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from digitdet.data.coco import (
    IMAGE_SUFFIXES,
    SPLITS,
    PathLike,
    image_size,
    list_images,
    load_coco,
    read_image,
)
from digitdet.errors import DataError

PERCENTILES = (5, 25, 50, 75, 95)
NEEDS_JSON = ("train", "valid")  # training and validation cannot work without annotations


def _percentiles(values: list[float] | np.ndarray) -> dict[int, float] | None:
    if len(values) == 0:
        return None
    return {p: round(float(v), 1) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}


def _check_split(data_dir: Path, split: str, decode: bool) -> dict | None:
    image_dir, json_path = data_dir / split, data_dir / f"{split}.json"
    has_dir, has_json = image_dir.is_dir(), json_path.is_file()
    if not has_dir and not has_json:
        return None
    if not has_dir:
        raise DataError(f"{json_path}: exists but its image folder {image_dir} does not")
    if not has_json:
        if split in NEEDS_JSON:
            raise DataError(f"{image_dir}: split '{split}' needs annotations but {json_path} does not exist")
        listed = list_images(image_dir)
        if decode:
            for _, path in listed:
                read_image(path)
        sizes = [image_size(path) for _, path in listed]
        return {
            "labelled": False,
            "images": len(listed),
            "image_width": _percentiles([w for w, _ in sizes]),
            "image_height": _percentiles([h for _, h in sizes]),
        }

    coco = load_coco(json_path, image_dir, check_files=True)
    if decode:
        # load_coco only read headers; decoding catches truncated/corrupt pixel data.
        for rec in coco.images:
            read_image(image_dir / rec["file_name"])
    boxes = [b for b in coco.boxes.values() if len(b)]
    allb = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    labels = np.concatenate(list(coco.labels.values())) if coco.labels else np.zeros(0, np.int64)
    per_image = Counter(len(b) for b in coco.boxes.values())
    listed_names = {str(Path(rec["file_name"])) for rec in coco.images}
    unlisted = sum(
        1
        for p in image_dir.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.name not in listed_names
    )
    return {
        "labelled": True,
        "images": len(coco.images),
        "boxes": int(len(allb)),
        "clipped": coco.clipped,
        "unlisted_files": unlisted,  # images in the folder that the json does not mention (ignored)
        "digits_per_image": dict(sorted(per_image.items())),
        "digit_counts": {d: int((labels == d + 1).sum()) for d in range(10)},  # digit 0..9 -> boxes
        "box_height": _percentiles(allb[:, 3] - allb[:, 1]),
        "box_width": _percentiles(allb[:, 2] - allb[:, 0]),
        "image_width": _percentiles([rec["width"] for rec in coco.images]),
        "image_height": _percentiles([rec["height"] for rec in coco.images]),
    }


def check_dataset(data_dir: PathLike, decode: bool = True) -> dict:
    """Validate train/valid/test (each split present; json where present) and summarize them.

    decode=False skips decoding every image's pixels (headers and sizes are still checked).
    Returns {'data_dir', 'splits': {split: summary}, 'clipped': total clipped boxes}.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data folder not found")
    splits = {}
    for split in SPLITS:
        summary = _check_split(data_dir, split, decode)
        if summary is not None:
            splits[split] = summary
    if not splits:
        raise DataError(f"{data_dir}: no split found (expected train/, valid/ and/or test/ with their .json)")
    return {
        "data_dir": str(data_dir),
        "splits": splits,
        "clipped": sum(s.get("clipped", 0) for s in splits.values()),
    }


def _fmt_pct(pcts: dict | None) -> str:
    return "-" if not pcts else " / ".join(f"{v:g}" for v in pcts.values())


def format_summary(summary: dict) -> str:
    """A readable plain-text table of `check_dataset`'s summary."""
    splits = summary["splits"]
    names = list(splits)
    rows: list[tuple[str, list[str]]] = [
        ("images", [str(s["images"]) for s in splits.values()]),
        ("boxes", [str(s.get("boxes", "-")) for s in splits.values()]),
        ("clipped boxes", [str(s.get("clipped", "-")) for s in splits.values()]),
        ("unlisted files", [str(s.get("unlisted_files", "-")) for s in splits.values()]),
    ]
    pct_head = "p" + "/".join(str(p) for p in PERCENTILES)
    for key, title in (
        ("box_height", "box height"),
        ("box_width", "box width"),
        ("image_height", "image height"),
        ("image_width", "image width"),
    ):
        rows.append((f"{title} {pct_head}", [_fmt_pct(s.get(key)) for s in splits.values()]))

    def labelled_row(title: str, key: str, item: int) -> tuple[str, list[str]]:
        return title, [str(s[key].get(item, 0)) if s["labelled"] else "-" for s in splits.values()]

    counts = sorted({n for s in splits.values() for n in s.get("digits_per_image", {})})
    for n in counts:
        rows.append(labelled_row(f"images with {n} digit{'s' if n != 1 else ''}", "digits_per_image", n))
    if any(s["labelled"] for s in splits.values()):
        rows.extend(labelled_row(f"digit {d} boxes", "digit_counts", d) for d in range(10))

    label_w = max(len(r[0]) for r in rows)
    col_w = [max(len(n), *(len(r[1][i]) for r in rows)) for i, n in enumerate(names)]
    lines = [
        f"data: {summary['data_dir']}",
        " " * label_w + "  " + "  ".join(n.rjust(w) for n, w in zip(names, col_w)),
    ]
    for label, cells in rows:
        lines.append(label.ljust(label_w) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, col_w)))
    if summary["clipped"]:
        lines.append(f"warning: {summary['clipped']} box(es) overshot the image slightly and were clipped")
    return "\n".join(lines)
