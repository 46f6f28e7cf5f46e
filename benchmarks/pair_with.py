"""The bundled reader with one of its two files replaced, read end to end on validation splits: number
accuracy per split and the images it misread, for choosing a new whole-photo or close-up reader
(weights/MODEL.md records each choice and the rule written before it ran).

    python benchmarks/pair_with.py --close runs/reader/v2-letters12/reader-v2-letters12-resnet18-l3.pt \\
        data/val22/crop data/val22/cut ...
    python benchmarks/pair_with.py data/val21/scene test:scene real:real_plaques   # the shipped pair
    python benchmarks/pair_with.py --line runs/line/line.pt data/val37/cut          # with this line recogniser
    python benchmarks/pair_with.py --line-margin null data/val37/cut                 # without the shipped one

A set is a `digitdet synth` folder (its valid split), `test:MODE` (benchmarks/peers.py's test split of a
mode) or `real:NAME` (a folder of ../shared with numbers.csv, or by its path any folder like it:
benchmarks/real_crops.py makes some). The replaced file is read with its own
packed config and reading threshold, exactly as `Reader()` reads the bundled files (reading/reader.py's
load_model, pointed at the given files); the routing between the two is reading/routing.py's, unchanged, and
so is the line recogniser's dispute (reading/dispute.py) when one is given or shipped.
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
    reader = reader_module.Reader(overrides=[f"predict.line_margin={args.line_margin}"])
    print(f"pair: {reader.source}; whole-photo reading threshold {reader.cfg.predict.read_thresh}")
    total = right = 0
    for name in args.sets:
        items = items_of(name)
        wrong = []
        for path, truth in tqdm(items, desc=name, leave=False, unit="img"):
            got = reader.read_file(path).number
            if got != truth:
                wrong.append(f"{Path(path).name}:{truth}->{got}")
        total, right = total + len(items), right + len(items) - len(wrong)
        print(f"{name}\t{len(items) - len(wrong)} / {len(items)}\t{' '.join(wrong[:40])}", flush=True)
    print(f"all\t{right} / {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
