"""The bundled reader with one of its two files replaced, read end to end on validation splits: number
accuracy per split and the images it misread, for choosing a new whole-photo or close-up reader
(weights/MODEL.md records each choice and the rule written before it ran).

    python benchmarks/pair_with.py --close runs/reader/v2-letters12/reader-v2-letters12-resnet18-l3.pt \\
        data/val22/crop data/val22/cut ...
    python benchmarks/pair_with.py data/val21/scene test:scene real:real_plaques   # the shipped pair
    python benchmarks/pair_with.py --line runs/line/line.pt data/val37/cut          # with this line recogniser
    python benchmarks/pair_with.py --line-margin null data/val37/cut                 # without the shipped one
    python benchmarks/pair_with.py --line runs/line/line.pt --both data/val37/cut    # with and without, at once
    python benchmarks/pair_with.py --override predict.line_context=1 data/val37/cut  # any config override

A set is a `digitdet synth` folder (its valid split), `test:MODE` (benchmarks/peers.py's test split of a
mode) or `real:NAME` (a folder of ../shared with numbers.csv, or by its path any folder like it:
benchmarks/real_crops.py makes some). The replaced file is read with its own
packed config and reading threshold, exactly as `Reader()` reads the bundled files (reading/reader.py's
load_model, pointed at the given files); the routing between the two is reading/routing.py's, unchanged, and
so is the line recogniser's dispute (reading/dispute.py) when one is given or shipped. `--both` reads every
photo with the dispute and, only where the dispute replaced the pair's number, again without it (a second
Reader on the same files): each set's figure with and without the line recogniser, from one pass (reading is
deterministic, so a photo the dispute left alone reads the same without it).
A validation split made for a choice: `digitdet synth data/val22/MODE --train 0 --valid 300 --test 0
--seed 22 --modes MODE=1` for each mode.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (the same photo sets, read the same way)


def synthetic_split(name: str) -> tuple[Path, str] | None:
    """(digitdet-synth folder, split) a set's photos come from; None for a real set."""
    if name.startswith("real:"):
        return None
    return (peers.CACHE / name[5:], "test") if name.startswith("test:") else (Path(name), "valid")


def items_of(name: str) -> list[tuple[str, str]]:
    if name.startswith("real:"):  # a ../shared set by name, or a folder like it by path
        return peers.real_set(peers.photo_folder(name[5:]) or peers.SHARED / name[5:])
    if name.startswith("test:"):
        peers.synthetic_set(name[5:], 200)  # made once, all 200
    return peers.numbered_split(*synthetic_split(name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+")
    p.add_argument("--whole", help="a packed reader in the whole-photo reader's place")
    p.add_argument("--close", help="a packed reader in the close-up reader's place")
    p.add_argument("--line", help="a line recogniser (`digitdet line` train's or pack's file) disputing close-ups")
    p.add_argument("--line-margin", default="3", help="predict.line_margin (null: no dispute)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="more config overrides for the reader(s), e.g. predict.line_context=1")
    p.add_argument("--both", action="store_true", help="also each set's figure without the dispute (see above)")
    args = p.parse_args(argv)
    import torch
    from tqdm import tqdm

    import digitdet.reading.reader as reader_module
    from digitdet.model import packed

    bundled = packed.bundled_reader_paths(0.35, 3.0)
    files = [Path(args.whole) if args.whole else bundled[0], Path(args.close) if args.close else bundled[1]]
    files += [Path(args.line)] if args.line else bundled[2:]
    reader_module.bundled_reader_path = lambda name=None: files[0]
    reader_module.bundled_reader_paths = lambda close_frac, line_margin=None: (
        files[:1] if close_frac is None else files[:2] if line_margin is None else files)
    torch.set_num_threads(2)
    reader = reader_module.Reader(overrides=[f"predict.line_margin={args.line_margin}", *args.override])
    print(f"pair: {reader.source}; whole-photo reading threshold {reader.cfg.predict.read_thresh}")
    without = disputed = None
    if args.both:
        if args.line_margin == "null" or not files[2:]:
            p.error("--both needs a line recogniser (--line, or the shipped one) and a line margin")
        without = reader_module.Reader(overrides=["predict.line_margin=null", *args.override])
        disputed = watch_disputes()
    total = right = right_without = 0
    for name in args.sets:
        items = items_of(name)
        wrong, wrong_without, changed = [], [], 0
        for path, truth in tqdm(items, desc=name, leave=False, unit="img"):
            if disputed is not None:
                disputed.clear()
            got = reader.read_file(path).number or peers.NONE  # a photo with no number: read as none
            if got != truth:
                wrong.append(f"{Path(path).name}:{truth}->{got}")
            if without is not None:
                before = (without.read_file(path).number or peers.NONE) if disputed else got
                changed += before != got
                if before != truth:
                    wrong_without.append(f"{Path(path).name}:{truth}->{before}")
        total, right = total + len(items), right + len(items) - len(wrong)
        print(f"{name}\t{len(items) - len(wrong)} / {len(items)}\t{' '.join(wrong[:40])}", flush=True)
        if without is not None:
            right_without += len(items) - len(wrong_without)
            print(f"{name} without\t{len(items) - len(wrong_without)} / {len(items)}\t"
                  f"{len(wrong_without) - len(wrong):+d} by the dispute, {changed} numbers changed\t"
                  f"{' '.join(wrong_without[:40])}", flush=True)
    print(f"all\t{right} / {total}" + (f"\twithout the dispute {right_without} / {total}" if args.both else ""))
    return 0


def watch_disputes() -> list:
    """A list that gets an entry each time the line recogniser's dispute replaces the pair's detections."""
    from digitdet.reading import routing

    seen: list = []
    real = routing.dispute

    def recording(*args, **kwargs):
        det = real(*args, **kwargs)
        if det is not args[2]:  # dispute returns the pair's own dict when it keeps the pair's number
            seen.append(det)
        return det

    routing.dispute = recording
    return seen


if __name__ == "__main__":
    raise SystemExit(main())
