"""Whole-number accuracy of a checkpoint on the real plaque photos (a development set: measure, never
train or tune on it).

    python scripts/real_plaques.py [--checkpoint runs/demo/best.pt] [--scan pyramid] [--data ../shared/real_signs]

Reads DATA/images with the same Reader as `digitdet read` (no checkpoint: the bundled reader; whole-photo
detection as --scan says, default the config's predict.scan) and compares with DATA/numbers.csv
(image_id,true_number,...; ids are the integer file stems). Prints a markdown table of every photo, the
accuracy and the time per photo.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_numbers(path: Path) -> dict[int, str]:
    with path.open(newline="", encoding="utf-8") as f:
        return {int(r["image_id"]): str(r["true_number"]).strip() for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="default: the bundled reader")
    p.add_argument("--scan", choices=("cascade", "pyramid", "single"), help="whole-photo detection (predict.scan)")
    p.add_argument("--single-scale", action="store_true", help="the same as --scan single")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "real_plaques"))
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = p.parse_args(argv)
    from digitdet.reading.reader import Reader, image_files

    data = Path(args.data)
    truth = read_numbers(data / "numbers.csv")
    reader = Reader(args.checkpoint, overrides=tuple(args.overrides), scan="single" if args.single_scale else args.scan)
    read, ms = {}, []
    for f in image_files([data / "images"]):
        r = reader.read_file(f)
        read[int(f.stem)] = r.number if r.number is not None else "-1"
        ms.append(r.ms)
    right = sum(read.get(i) == n for i, n in truth.items())
    print("| photo | true | read | |")
    print("|---:|---:|---:|---|")
    for i, n in sorted(truth.items()):
        print(f"| {i} | {n} | {read.get(i, '(none)')} | {'ok' if read.get(i) == n else ''} |")
    mode = reader.cfg.predict.scan
    print(f"\n{data.name} number accuracy: {right}/{len(truth)} = {right / len(truth):.3f} ({reader.source}, "
          f"{mode}; {sum(ms) / len(ms):.0f} ms per photo on average, slowest {max(ms):.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
