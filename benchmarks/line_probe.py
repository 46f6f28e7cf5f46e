"""A probe, not a reader: can a small line recogniser (CNN + BiLSTM + CTC, the design of PP-OCR's and
EasyOCR's recognisers) read a close-up's whole number where the shipped detector pair cannot?

The ceiling study (weights/MODEL.md, 2026-12-06) showed that no rule over the pair's readings reaches 0.95
on cut or relief: the detector drops or misreads an edge digit. A recogniser reads the close-up as one
line, learns the generator's truth for cut digits (>= 72 % of a digit's ink inside: a digit; <= 30 %:
not) and for letters after the number, and needs no boxes. This script measures it alone, on the same
validation splits `pair_with.py` reads, and against the pair's cached readings. The recogniser is now a
package part (digitdet.model.line), trained by `digitdet line prepare/train` (digitdet.training.line).

    python benchmarks/line_probe.py eval runs/line/line.pt data/val21/crop data/val21/cut test:cut ...
    python benchmarks/line_probe.py cache logs/pair-val45.jsonl data/val45/cut data/val45/relief ...
    python benchmarks/line_probe.py eval runs/line3/line.pt data/val45/cut data/val45/relief \
        --pair logs/pair-val45.jsonl --margins 2,3,4 --views 1,1.15,1.3

`cache` reads each photo with the bundled reader as shipped but with the dispute left out (reading/dispute.py
is replaced by a recorder that keeps the pair's detections), and writes, per photo, the pair's number and
whether the dispute would have consulted the line recogniser (route "close": a close-up whose best number is
not stacked, or with `--override predict.line_context=C` also a whole photo where a number is read; else
"kept"), with the pair's number box for `eval --context`. With `--pair` such a file, `eval` counts the dispute
rule offline for any recogniser: it gives the shipped reader's figures exactly (val45: cut 275, relief 279 of
300, as pair_with.py read them), in about a minute instead of pair_with.py's ten. `--views F,..`: each line is
read at these horizontal stretches of the photo, and the number is the one (among each view's greedy reading)
with the highest CTC log-likelihood averaged over the views, the dispute comparing those averages.

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

def decode(logits) -> list[tuple[str, float]]:
    """Greedy CTC: (number, "-1" when none; the product of the path's top probabilities) per line."""
    from digitdet.model.line import decode as greedy

    prob = logits.softmax(-1).max(-1).values.prod(-1)
    return [(n or "-1", float(p)) for (n, _), p in zip(greedy(logits), prob)]


def stretched(path, factor: float, rec: dict | None = None, context: float | None = None) -> np.ndarray:
    """The photo's line with the photo first stretched horizontally by `factor` (1: as the package reads it);
    with `context`, of the region around the pair's number in `rec` (a `cache` record) as the dispute reads
    it (reading/dispute.line_region)."""
    from PIL import Image

    from digitdet.model.line import to_line
    from digitdet.reading.dispute import line_region

    with Image.open(path) as im:
        im = im.convert("RGB")
        if context is not None and rec and rec.get("box"):
            s = im.width / rec["size"][0]  # the record is on the reader's scale
            im = im.crop(line_region([v * s for v in rec["box"]], rec["digit_h"] * s, im.width, im.height, context))
        if factor != 1.0:
            im = im.resize((max(1, round(im.width * factor)), im.height), Image.BICUBIC)
        return to_line(im)


def best_of_views(views: list) -> tuple[list[tuple[str, float]], list]:
    """Logits of the same lines read in several views (each B x T x 11) -> per line (number, "-1" when none;
    path probability in the first view), the number being the greedy reading of any view with the highest
    CTC log-likelihood averaged over the views; and the views (for the dispute's likelihoods)."""
    from digitdet.model.line import log_likelihood

    firsts = decode(views[0])
    if len(views) == 1:
        return firsts, views
    readings = [decode(v) for v in views]
    out = []
    for i in range(len(firsts)):
        cands = sorted({r[i][0] for r in readings})
        numbers = [None if c == "-1" else c for c in cands]
        mean = np.mean([log_likelihood(v[i:i + 1].expand(len(cands), -1, -1), numbers) for v in views], 0)
        out.append((cands[int(np.argmax(mean))], firsts[i][1]))
    return out, views


def evaluate(args) -> int:
    import torch

    import pair_with
    from digitdet.model.line import as_batch, load_line_reader

    torch.set_num_threads(2)
    models = [load_line_reader(c) for c in args.checkpoint.split(",")]  # several: an ensemble, read as views
    pair = {}  # path -> the pair's cached reading ("up") and route, from `cache` files
    for f in args.pair or []:
        pair.update({r["path"]: r for r in map(json.loads, Path(f).read_text().splitlines())})
    taus = [float(t) for t in args.taus.split(",")]
    margins = [float(m) for m in args.margins.split(",")]
    fill = tuple(float(v) for v in args.fill.split(",")) if args.fill else None
    factors = [float(v) for v in args.views.split(",")]
    total = right = 0
    for name in args.sets:
        items = pair_with.items_of(name)
        xs = [np.stack([stretched(p, f, pair.get(str(p)), args.context) for p, _ in items]) for f in factors]
        t0 = time.time()
        with torch.no_grad():
            got, logits = best_of_views([model(as_batch(x)) for model in models for x in xs])
        ms = (time.time() - t0) * 1000 / len(items)
        wrong = [f"{Path(p).name}:{t}->{g}" for (p, t), (g, _) in zip(items, got) if g != t]
        total, right = total + len(items), right + len(items) - len(wrong)
        print(f"{name}\t{len(items) - len(wrong)} / {len(items)}\t{ms:.1f} ms/img\t{' '.join(wrong[:30])}", flush=True)
        if pair:
            print("\t" + combined(items, got, pair, taus), flush=True)
            print("\t" + disputed(items, got, logits, pair, margins, fill, args.agree), flush=True)
    print(f"all\t{right} / {total}")
    return 0


def cache(args) -> int:
    """The pair's readings without the dispute (see the module doc), one JSON line a photo."""
    import torch
    from tqdm import tqdm

    import pair_with
    from digitdet import io
    from digitdet.reading import routing
    from digitdet.reading.reader import Reader

    torch.set_num_threads(2)
    consulted = []
    routing.dispute = recorder(consulted)
    reader = Reader(overrides=args.override)
    recs = []
    for name in args.sets:
        for path, truth in tqdm(pair_with.items_of(name), desc=name, leave=False, unit="img"):
            consulted.clear()
            up = reader.read_file(path).number
            recs.append({"set": name, "path": str(path), "truth": truth, "up": up,
                         "route": "close" if consulted else "kept", **(consulted[0] if consulted else {})})
    io.write_text(args.out, "".join(json.dumps(r) + "\n" for r in recs))
    print(f"{len(recs)} photos, {sum(r['route'] == 'close' for r in recs)} the dispute would consult -> {args.out}")
    return 0


def recorder(consulted: list):
    """A stand-in for reading/dispute.dispute that keeps the pair's detections and appends to `consulted`,
    when the real one would have read the line (a best number that is not stacked, as dispute checks), what
    line_region needs: the pair's number box and digit height, and the photo's size, on the reader's scale."""
    from digitdet.reading.dispute import digit_height, pair_best

    def keep(line_reader, image, det, margin, whole_thresh, dedup_iou, context=None, read_unread=True):
        best = pair_best(det, whole_thresh, dedup_iou)
        if best is None:
            if read_unread:
                consulted.append({"box": None, "size": [image.shape[-1], image.shape[-2]]})
        elif not best.vertical:
            consulted.append({"box": [round(float(v), 2) for v in best.box], "digit_h": round(digit_height(best), 2),
                              "size": [image.shape[-1], image.shape[-2]]})
        return det

    return keep


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


def disputed(items, got, logits, pair: dict, margins: list[float], fill: tuple | None = None,
             agree: float | None = None) -> str:
    """The rule "dispute at margin m": on a photo the pair read as a close-up, the line's number replaces the
    pair's when the line finds its own number at least e^m times likelier than the pair's (CTC likelihood,
    all alignments). Unlike the path confidence, this asks how strongly the line disagrees with the pair.
    `fill` (fraction, margin): that margin instead of m where the pair's digits (the cache's digit_h) are at
    least that fraction of the photo's height (a rule for frame-filling close-ups measured on 2026-12-07 and
    not adopted: weights/MODEL.md). `agree`: that margin instead where every view (each recogniser of an
    ensemble, each stretch) reads the same number greedily (measured 2026-12-07 afternoon, not adopted)."""
    recs = readings_of(items, pair)
    up = sum(r["up"] == t for r, (_, t) in zip(recs, items))
    from digitdet.model.line import log_likelihood

    views = logits if isinstance(logits, list) else [logits]  # the dispute compares averages over the views
    mine = [None if g == "-1" else g for g, _ in got]
    gap = np.mean([np.subtract(log_likelihood(v, mine), log_likelihood(v, [r["up"] for r in recs])) for v in views], 0)
    def fills(r: dict) -> bool:
        return fill is not None and bool(r.get("box")) and r["digit_h"] >= fill[0] * r["size"][1]

    readings = [decode(v) for v in views] if agree is not None else []  # decoded only for --agree
    agreed = [bool(readings) and len({r[i][0] for r in readings}) == 1 for i in range(len(items))]

    def margin(r: dict, m: float, i: int) -> float:
        return agree if agreed[i] else fill[1] if fills(r) else m

    cols = []
    for m in margins:
        n = sum((g if r["route"] == "close" and g not in (r["up"], "-1") and d >= margin(r, m, i)
                 else r["up"]) == t for i, (r, (g, _), d, (_, t)) in enumerate(zip(recs, got, gap, items)))
        cols.append(f"dispute@{m:g} {n} ({n - up:+d})")
    return "  ".join(cols)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("eval")
    a.add_argument("checkpoint", help="a recogniser; several, comma-separated: each line is read by each, as "
                   "views are (--views), and the number is chosen on their averaged likelihoods")
    a.add_argument("sets", nargs="+")
    a.add_argument("--pair", nargs="+", help="`cache` files of the same sets: add the pair's count, either right, "
                   "and the combination rules'")
    a.add_argument("--views", default="1", help="horizontal stretches each line is read at (see the module doc)")
    a.add_argument("--taus", default="0.9,0.95,0.99,0.999", help="the override rule's thresholds")
    a.add_argument("--margins", default="1,2,4,8,16", help="the dispute rule's log-likelihood margins (nats)")
    a.add_argument("--fill", help="F,M: margin M where the pair's digits are >= F of the photo's height")
    a.add_argument("--agree", type=float, help="margin M where every view and recogniser reads the same number")
    a.add_argument("--context", type=float, help="read the region around the pair's number in the --pair "
                   "records, this many digit heights each side (predict.line_context)")
    c = sub.add_parser("cache")
    c.add_argument("out", help="JSONL to write")
    c.add_argument("sets", nargs="+")
    c.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config overrides for the reader (predict.line_context=1: whole photos with a number "
                   "are consulted too)")
    args = p.parse_args(argv)
    return evaluate(args) if args.cmd == "eval" else cache(args)


if __name__ == "__main__":
    raise SystemExit(main())
