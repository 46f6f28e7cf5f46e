"""A probe, not a reader: can a small line recogniser (CNN + BiLSTM + CTC, the design of PP-OCR's and
EasyOCR's recognisers) read a close-up's whole number where the shipped detector pair cannot?

The ceiling study (weights/MODEL.md, 2026-12-06) showed that no rule over the pair's readings reaches 0.95
on cut or relief: the detector drops or misreads an edge digit. A recogniser reads the close-up as one
line, learns the generator's truth for cut digits (>= 72 % of a digit's ink inside: a digit; <= 30 %:
not) and for letters after the number, and needs no boxes. This script measures it alone, on the same
validation splits `pair_with.py` reads, and against the pair's cached readings. The recogniser is now a
package part (digitdet.model.line), trained by `digitdet line prepare/train` (digitdet.training.line).

    python benchmarks/line_probe.py eval runs/line/line.pt data/val21/crop data/val21/cut test:cut ...
    python benchmarks/line_probe.py eval runs/line/crnn.pt data/val21/cut --pair CACHE.jsonl --margins 2,4,8

A close-up is an image whose tallest digit box is at least 0.35 of its height (the pair's routing
threshold, reading/routing.py); the others (whole scene and sign photos) are left out. Sets are named as
in pair_with.py. Each is read as the package reads a line (digitdet.model.line.to_line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

def line_of(path) -> np.ndarray:
    from PIL import Image

    from digitdet.model.line import to_line

    with Image.open(path) as im:
        return to_line(im)


def decode(logits) -> list[tuple[str, float]]:
    """Greedy CTC: (number, "-1" when none; the product of the path's top probabilities) per line."""
    from digitdet.model.line import decode as greedy

    prob = logits.softmax(-1).max(-1).values.prod(-1)
    return [(n or "-1", float(p)) for (n, _), p in zip(greedy(logits), prob)]


def evaluate(args) -> int:
    import torch

    import pair_with
    from digitdet.model.line import as_batch, load_line_reader

    torch.set_num_threads(2)
    model = load_line_reader(args.checkpoint)
    pair = {}  # path -> the pair's cached reading ("up") and route, from level_probe.py --cache files
    for f in args.pair or []:
        pair.update({r["path"]: r for r in map(json.loads, Path(f).read_text().splitlines())})
    taus = [float(t) for t in args.taus.split(",")]
    margins = [float(m) for m in args.margins.split(",")]
    total = right = 0
    for name in args.sets:
        items = pair_with.items_of(name)
        x = np.stack([line_of(p) for p, _ in items])
        t0 = time.time()
        with torch.no_grad():
            logits = model(as_batch(x))
            got = decode(logits)
        ms = (time.time() - t0) * 1000 / len(items)
        wrong = [f"{Path(p).name}:{t}->{g}" for (p, t), (g, _) in zip(items, got) if g != t]
        total, right = total + len(items), right + len(items) - len(wrong)
        print(f"{name}\t{len(items) - len(wrong)} / {len(items)}\t{ms:.1f} ms/img\t{' '.join(wrong[:30])}", flush=True)
        if pair:
            print("\t" + combined(items, got, pair, taus), flush=True)
            print("\t" + disputed(items, got, logits, pair, margins), flush=True)
    print(f"all\t{right} / {total}")
    return 0


def readings_of(items, pair: dict) -> list[dict]:
    """The pair's cached record of each photo; one line and exit when the --pair caches miss some."""
    recs = [pair.get(str(p)) for p, _ in items]
    if None in recs:
        raise SystemExit(f"the --pair caches miss {sum(r is None for r in recs)} of the {len(items)} photos")
    return recs


def combined(items, got, pair: dict, taus: list[float]) -> str:
    """The pair's count, the line recogniser's, either right (a look, not a rule), and the rule "override at
    tau": on a photo the pair read as a close-up, the line's number replaces the pair's when its path
    probability is at least tau."""
    recs = readings_of(items, pair)
    up = sum(r["up"] == t for r, (_, t) in zip(recs, items))
    line = sum(g == t for (g, _), (_, t) in zip(got, items))
    either = sum(r["up"] == t or g == t for r, (g, _), (_, t) in zip(recs, got, items))
    cols = [f"pair {up}", f"line {line}", f"either {either}"]
    for tau in taus:
        n = sum((g if r["route"] == "close" and c >= tau else r["up"]) == t
                for r, (g, c), (_, t) in zip(recs, got, items))
        cols.append(f"override@{tau:g} {n} ({n - up:+d})")
    return "  ".join(cols)


def disputed(items, got, logits, pair: dict, margins: list[float]) -> str:
    """The rule "dispute at margin m": on a photo the pair read as a close-up, the line's number replaces the
    pair's when the line finds its own number at least e^m times likelier than the pair's (CTC likelihood,
    all alignments). Unlike the path confidence, this asks how strongly the line disagrees with the pair."""
    recs = readings_of(items, pair)
    up = sum(r["up"] == t for r, (_, t) in zip(recs, items))
    from digitdet.model.line import log_likelihood

    gap = np.subtract(log_likelihood(logits, [g for g, _ in got]), log_likelihood(logits, [r["up"] for r in recs]))
    cols = []
    for m in margins:
        n = sum((g if r["route"] == "close" and g != r["up"] and d >= m else r["up"]) == t
                for r, (g, _), d, (_, t) in zip(recs, got, gap, items))
        cols.append(f"dispute@{m:g} {n} ({n - up:+d})")
    return "  ".join(cols)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("eval")
    a.add_argument("checkpoint")
    a.add_argument("sets", nargs="+")
    a.add_argument("--pair", nargs="+", help="level_probe.py --cache files of the same sets: add the pair's count "
                   "and the combination rule's")
    a.add_argument("--taus", default="0.9,0.95,0.99,0.999", help="the override rule's thresholds")
    a.add_argument("--margins", default="1,2,4,8,16", help="the dispute rule's log-likelihood margins (nats)")
    args = p.parse_args(argv)
    return evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
