"""Two readers, each where it is better: the whole-photo reader (the bundled v1, alone) reads the photo, and
when its best number or its tallest detection is at least a fraction t of the photo's height (a close-up),
a second reader's answer replaces it. Prints number accuracy per set for each reader alone, for the routing
at each t, for "either was right" (the ceiling of any rule that picks between the two) and for the bundled
reader as shipped (reading/routing.py, at predict.close_frac: it must equal the simulated routing at that t;
the whole reader runs twice on each photo for it, once to read and once for its raw detections). Choose t
on --valid (a synthetic validation split), never on the real sets.

    python benchmarks/route_readers.py --close runs/reader/v2/reader-v2-resnet18-l3.pt \\
        --valid data/reader-v2 [--whole RUN/best.pt] [--n 100] [--fracs 0.3,0.35,0.4]

The close reader is made by `bash scripts/train_reader_v2.sh` (weights/MODEL.md). Accuracy only: the time
columns of benchmarks/peers.py do not apply (both readers run on every photo here).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (the same photo sets, read the same way)


def answers(items, whole, close, shipped) -> list[tuple[str, str, str, float, str]]:
    """(truth, whole reader's number, close reader's number, what the routing compares with t: the taller of the
    whole reader's best number and its tallest detection over the photo's height (routing.close_up_height),
    the shipped pair's number)."""
    from tqdm import tqdm

    from digitdet.reading.routing import RouteSettings, close_up_height

    p = whole.cfg.predict
    settings = RouteSettings(whole_thresh=p.read_thresh, dedup_iou=p.dedup_iou)
    out = []
    for path, truth in tqdm(items, leave=False, unit="img"):
        image, size = whole.load_image(path)  # as read_file loads it, once: the detections' pixels
        a, b = whole.read_image(image, path, original_size=size), close.read_file(path)
        frac = close_up_height(whole.detect(image), settings) / image.height
        out.append((truth, a.number, b.number, frac, shipped.read_file(path).number))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--close", required=True, help="the close-up reader (a checkpoint or packed file)")
    p.add_argument("--whole", help="the whole-photo reader (default: the bundled one alone)")
    p.add_argument("--valid", help="digitdet-synth folders (comma-separated) whose valid splits are measured first "
                   "(choose t there)")
    p.add_argument("--n", type=int, default=100, help="images per synthetic test set")
    p.add_argument("--fracs", default="0.3,0.35,0.4")
    p.add_argument("--sets", default=None, help="comma-separated (default: the real sets and every mode)")
    args = p.parse_args(argv)
    import torch

    from digitdet.reading.reader import Reader

    torch.set_num_threads(2)
    fracs = [float(f) for f in args.fracs.split(",")]
    whole = Reader(args.whole) if args.whole else Reader(overrides=("predict.close_frac=null",))
    close, shipped = Reader(args.close), Reader()
    names = args.sets.split(",") if args.sets else ["real_plaques", "real_signs", *peers.synth_modes()]
    sets = {f"{v} valid": peers.numbered_split(Path(v), "valid") for v in (args.valid or "").split(",") if v}
    for name in names:
        sets[name] = (peers.real_set(peers.SHARED / name) if name.startswith("real_")
                      else peers.synthetic_set(name, args.n))
    print(f"| set | n | {args.whole or whole.source} | {args.close} | " + " | ".join(f"routed t={t}" for t in fracs)
          + f" | either right | {shipped.source} (t={shipped.cfg.predict.close_frac}) |")
    print("|---|---:|---:|---:|" + "---:|" * len(fracs) + "---:|---:|")
    for name, items in sets.items():
        rows = answers(items, whole, close, shipped)
        alone = [sum(r[0] == r[k] for r in rows) for k in (1, 2)]
        routed = [sum(r[0] == (r[2] if r[3] >= t else r[1]) for r in rows) for t in fracs]
        either = sum(r[0] in (r[1], r[2]) for r in rows)
        as_shipped = sum(r[0] == r[4] for r in rows)
        print(f"| {name} | {len(rows)} | {alone[0]} | {alone[1]} | " + " | ".join(map(str, routed))
              + f" | {either} | {as_shipped} |")
    print(f"\n*{datetime.date.today()}, {peers.cpu_name()}; `python benchmarks/route_readers.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}`*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
