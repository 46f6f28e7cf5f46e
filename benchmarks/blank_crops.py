"""Photos with no number in them, for counting how often a reader invents one: crops of `digitdet synth`
photos (a wall, a plaque's edge, a sign's words; any mode) clear of every digit and lookalike box the
generator drew (small print's digits are lookalikes, so no room number is in a crop either), 40-240 px high
and 0.6-3 times as wide, written as ../shared's sets are (images/N.png + numbers.csv, truth -1: none).

    digitdet synth data/val63/scene --train 0 --valid 300 --test 0 --seed 63 --modes scene=1   # and sign, plaque
    python benchmarks/blank_crops.py data/val63/scene data/val63/sign data/val63/plaque --out data/blank63
    python benchmarks/peers.py --sets data/blank63 --no-extras       # digitdet and the peers side by side
    python benchmarks/pair_with.py real:data/blank63 --override predict.line_veto=null   # without the veto

Crops (digitdet.training.blanks.blank_crops) are drawn photo by photo in turn across the folders' valid
splits (--split; seeded); a photo with no such room is passed over. A set for measuring, like the real ones: never
train on it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def write_set(out: Path, crops) -> int:
    """(image, where it came from) pairs as ../shared's sets are laid out (images/N.png + numbers.csv), truth
    -1 (none): what peers.py and pair_with.py read. Refuses an existing folder."""
    from digitdet import io

    if out.exists():
        sys.exit(f"{out}: exists; choose a new folder")
    (out / "images").mkdir(parents=True)
    rows = []
    for i, (im, source) in enumerate(crops, 1):
        im.save(out / "images" / f"{i}.png")
        rows.append({"image_id": i, "true_number": "-1", "source_file": source})
    with io.atomic_path(out / "numbers.csv", suffix=".csv") as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image_id", "true_number", "source_file"])
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} number-free crops -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="digitdet synth folders")
    p.add_argument("--out", required=True, type=Path, help="the set's folder (must not exist)")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="valid", help="the folders' split to crop (peers.py crops the test split)")
    args = p.parse_args(argv)
    return write_set(args.out, cut_crops(args.folders, args.n, args.seed, args.split))


def cut_crops(folders: list[Path], n: int, seed: int, split: str = "valid"):
    """(crop, "photo:x0,y0,x1,y1") for blank_crops' number-free crops of the folders' split."""
    from PIL import Image

    from digitdet.training.blanks import blank_crops

    for photo, box in blank_crops(folders, n, seed, split):
        with Image.open(photo) as im:
            yield im.convert("RGB").crop(box), f"{photo}:{','.join(map(str, box))}"


if __name__ == "__main__":
    raise SystemExit(main())
