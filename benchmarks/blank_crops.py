"""Photos with no number in them, for counting how often a reader invents one: crops of `digitdet synth`
photos (a wall, a plaque's edge, a sign's words; any mode) clear of every digit and lookalike box the
generator drew (small print's digits are lookalikes, so no room number is in a crop either), 40-240 px high
and 0.6-3 times as wide, written as ../shared's sets are (images/N.png + numbers.csv, truth -1: none).

    digitdet synth data/val63/scene --train 0 --valid 300 --test 0 --seed 63 --modes scene=1   # and sign, plaque
    python benchmarks/blank_crops.py data/val63/scene data/val63/sign data/val63/plaque --out data/blank63
    python benchmarks/peers.py --sets data/blank63 --no-extras       # digitdet and the peers side by side
    python benchmarks/pair_with.py real:data/blank63 --override predict.line_veto=2

Crops (digitdet.training.blanks.blank_crops) are drawn photo by photo in turn across the folders' valid
splits (seeded); a photo with no such room is passed over. A set for measuring, like the real ones: never
train on it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="digitdet synth folders")
    p.add_argument("--out", required=True, type=Path, help="the set's folder (must not exist)")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from PIL import Image

    from digitdet import io
    from digitdet.training.blanks import blank_crops

    if args.out.exists():
        sys.exit(f"{args.out}: exists; choose a new folder")
    crops = blank_crops(args.folders, args.n, args.seed)  # digitdet.training.blanks
    (args.out / "images").mkdir(parents=True)
    rows = []
    for i, (photo, box) in enumerate(crops, 1):
        with Image.open(photo) as im:
            im.convert("RGB").crop(box).save(args.out / "images" / f"{i}.png")
        rows.append({"image_id": i, "true_number": "-1", "source_file": f"{photo}:{','.join(map(str, box))}"})
    with io.atomic_path(args.out / "numbers.csv", suffix=".csv") as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image_id", "true_number", "source_file"])
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} number-free crops of {len(args.folders)} folders -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
