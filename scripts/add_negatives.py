"""Append number-free photos to a `digitdet synth` folder's training split as negatives: images with no digit
box, so that a reader trained on the folder learns that a bare wall, a plaque's edge or a sign's words hold no
number (the bundled pair read one in 30 of the 200 number-free crops of peers.py's no-number set before its
line recogniser's veto; weights/MODEL.md "2026-12-08 (b)").

    digitdet synth data/neg-src/scene --train 900 --valid 0 --test 0 --seed 82 --modes scene=1  # and sign, plaque
    python benchmarks/blank_crops.py data/neg-src/scene data/neg-src/sign data/neg-src/plaque --split train \\
        --n 2400 --seed 82 --out data/neg-blank
    python scripts/add_negatives.py data/reader-v2-neg data/neg-blank   # a digitdet synth folder

(scripts/make_negatives.sh makes data/neg-src and data/neg-blank; the training scripts run the last line.)

Each image of the sets (../shared's layout: images/ + numbers.csv, every truth -1) is copied into
FOLDER/train as neg-<set>-<name> and listed in train.json without annotations; train.json is rewritten
atomically. A set whose numbers.csv names a number (truth other than -1) is refused: a negative must hold none.
Adding the same set twice is refused too (its files are already there).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

from digitdet import io
from digitdet.errors import DataError


def negatives(folder: Path) -> list[Path]:
    """The image files of a number-free set, in numbers.csv's order; DataError when one shows a number."""
    table = folder / "numbers.csv"
    if not table.is_file():
        raise DataError(f"{folder}: no numbers.csv (a set as benchmarks/blank_crops.py writes it)")
    files = {p.stem: p for p in (folder / "images").iterdir()}
    out = []
    with table.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["true_number"] != "-1":
                raise DataError(f"{table}: image {row['image_id']} shows {row['true_number']}; negatives hold none")
            if row["image_id"] not in files:
                raise DataError(f"{table}: image {row['image_id']} has no file in {folder / 'images'}")
            out.append(files[row["image_id"]])
    return out


def add(folder: Path, sets: list[Path]) -> int:
    """Copy the sets' images into folder/train and list them in train.json; the number added."""
    path = folder / "train.json"
    coco = json.loads(path.read_text())
    next_id = max((im["id"] for im in coco["images"]), default=0) + 1
    taken = {im["file_name"] for im in coco["images"]}
    plan = []  # every set checked before a file is copied: a refused set leaves the folder as it was
    for s in sets:
        for src in negatives(s):
            name = f"neg-{s.name}-{src.name}"
            if name in taken:
                raise DataError(f"{path}: already lists {name} (was {s} added before?)")
            taken.add(name)
            plan.append((src, name))
    for src, name in plan:
        with Image.open(src) as im:
            w, h = im.size
        shutil.copyfile(src, folder / "train" / name)
        coco["images"].append({"id": next_id, "file_name": name, "width": w, "height": h})
        next_id += 1
    with io.atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(coco))
    return len(plan)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a digitdet synth folder (its train split gets the negatives)")
    p.add_argument("sets", nargs="+", type=Path, help="number-free sets (images/ + numbers.csv, truth -1)")
    args = p.parse_args(argv)
    try:
        n = add(args.folder, args.sets)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{n} negatives -> {args.folder / 'train.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
