"""Would reading a leaning close-up again, turned level, read more? (weights/MODEL.md, 2026-12-06: measured, not
adopted.) Each photo is read by the bundled pair as `digitdet read` reads it; when the close-up reader read it
and its number has two or more digits whose centres lean by at least --min-lean degrees (least squares), the
photo is turned level by that angle (PIL, bicubic, grown, the corners filled with the border's median colour)
and read again by the close-up reader's vote alone. Two rules are counted from the same readings:

    level   the level reading replaces the first when it reads a number
    level2  ... when it reads a number of two or more digits

    python benchmarks/level_probe.py data/val32/relief data/val32/cut ... [--cache logs/level-val32.jsonl]

Sets as benchmarks/pair_with.py takes them (a `digitdet synth` folder's valid split, test:MODE, real:NAME).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pair_with  # noqa: E402  (the same sets)


def lean(centres) -> float | None:
    """Degrees the least-squares line through the (x, y) centres falls from left to right (y down)."""
    xs, ys = np.array([c[0] for c in centres]), np.array([c[1] for c in centres])
    if len(xs) < 2:
        return None
    dx = xs - xs.mean()
    if (dx ** 2).sum() <= 1e-9:
        return None
    return math.degrees(math.atan((dx * (ys - ys.mean())).sum() / (dx ** 2).sum()))


def readings(reader, path: str, min_lean: float) -> dict:
    import torch

    from digitdet.reading import numbers
    from digitdet.reading.routing import vote

    p, d = reader.cfg.predict, reader.detector

    def read(image, close_only=False):
        t = reader._tensor(image)  # the bundled reader's eval transforms keep the photo's pixels (no upsample)
        with torch.inference_mode():
            det = (vote([d._close_reading(v, t) for v in (d.close, *d.close_views)], d.settings) if close_only
                   else d([t])[0])
        c = numbers.read_candidates(det["boxes"], det["scores"], det["labels"], p.read_thresh, p.dedup_iou,
                                    det.get("presence"))
        return (c[0].number, [g.centre for g in c[0].digits]) if c else (None, []), det.get("reader")

    image, _ = reader.load_image(path)
    (number, centres), route = read(image)
    out = {"up": number, "route": route, "lean": lean(centres) if route == "close" else None}
    if out["lean"] is not None and abs(out["lean"]) >= min_lean:
        a = np.asarray(image)
        fill = tuple(int(v) for v in np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]), 0))
        turned = image.rotate(out["lean"], resample=3, expand=True, fillcolor=fill)
        out["level"] = read(turned, close_only=True)[0][0]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--min-lean", type=float, default=10.0)
    ap.add_argument("--cache", help="JSONL of the readings: written, or read back when it exists")
    args = ap.parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    if cache is not None and cache.is_file():
        recs = [json.loads(line) for line in cache.open()]
        held = list(dict.fromkeys(r["set"] for r in recs))
        leans = {r.get("min_lean", 10.0) for r in recs}  # caches made before this field: the default, 10
        if held != args.sets or leans != {args.min_lean}:  # a cache answers only for what it was made from
            print(f"{cache}: holds the readings of {' '.join(held)} at --min-lean {' '.join(map(str, leans))}, "
                  "not of the sets and lean named; delete it or name those", file=sys.stderr)
            return 2
    else:
        import torch
        from tqdm import tqdm

        from digitdet.reading.reader import Reader

        torch.set_num_threads(2)
        reader = Reader()
        recs = [{"set": name, "path": str(path), "truth": truth, "min_lean": args.min_lean,
                 **readings(reader, path, args.min_lean)}
                for name in args.sets for path, truth in tqdm(pair_with.items_of(name), desc=name, leave=False)]
        if cache is not None:
            cache.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rules = {"level": lambda r: bool(r.get("level")), "level2": lambda r: len(r.get("level") or "") >= 2}
    by = defaultdict(list)
    for r in recs:
        by[r["set"]].append(r)
    print("| set | as read | " + " | ".join(rules) + " | turned |\n|---|---:|" + "---:|" * (len(rules) + 1))
    for name, rs in by.items():
        up = sum(r["up"] == r["truth"] for r in rs)
        got = [sum((r["level"] if take(r) else r["up"]) == r["truth"] for r in rs) for take in rules.values()]
        print(f"| {name} | {up} / {len(rs)} | " + " | ".join(f"{g} ({g - up:+d})" for g in got)
              + f" | {sum('level' in r for r in rs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
