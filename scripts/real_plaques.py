"""Whole-number accuracy of a checkpoint on the real plaque photos (a development set: measure, never
train or tune on it).

    python scripts/real_plaques.py --checkpoint runs/demo/best.pt [--data ../shared/real_plaques]

Runs `digitdet predict` over DATA/images (ids = integer file stems) and compares pred.csv with
DATA/numbers.csv (image_id,true_number,...). Prints a markdown table of every photo and the accuracy.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_numbers(path: Path) -> dict[int, str]:
    with path.open(newline="", encoding="utf-8") as f:
        return {int(r["image_id"]): str(r["true_number"]).strip() for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "real_plaques"))
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = p.parse_args(argv)
    from digitdet.predict import predict_folder

    data = Path(args.data)
    truth = read_numbers(data / "numbers.csv")
    with tempfile.TemporaryDirectory() as tmp:
        predict_folder(args.checkpoint, data / "images", tmp, overrides=tuple(args.overrides), progress=False)
        with (Path(tmp) / "pred.csv").open(newline="", encoding="utf-8") as f:
            read = {int(r["image_id"]): r["pred_label"] for r in csv.DictReader(f)}
    right = sum(read.get(i) == n for i, n in truth.items())
    print("| photo | true | read | |")
    print("|---:|---:|---:|---|")
    for i, n in sorted(truth.items()):
        print(f"| {i} | {n} | {read.get(i, '(none)')} | {'ok' if read.get(i) == n else ''} |")
    print(f"\nreal_plaques number accuracy: {right}/{len(truth)} = {right / len(truth):.3f} ({args.checkpoint})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
