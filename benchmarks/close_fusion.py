"""How the bundled pair's two readers could be combined on close-ups, measured offline: every image of the
given sets is read once by the whole-photo reader and, where the routing sends it on (a close-up), by the
close-up reader at each of its voting scales; those detections are cached, and each combination rule below
reads its number from them. The rule "shipped" is reading/routing.py's (the close-up reader's vote decides a
close-up), so its counts must equal benchmarks/pair_with.py's on the same sets.

    python benchmarks/close_fusion.py data/val21/crop data/val21/relief ...   # sets as pair_with.py takes them

Prints, per set and rule, the number of images read right, and the images where a rule and "shipped" differ.
`--oracle` also prints the ceiling of every rule over these readings: the images where at least one cached
reading (the whole-photo reader's, each voting scale's, and the whole-image and wide-pad views) is right,
and the images no reading gets right with what each read -- what no combination of them can fix.
Write the rule for choosing before running it (weights/MODEL.md keeps each rule with its figures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_with import items_of  # noqa: E402  (the same sets, read the same way)


def best_number(det: dict, s) -> tuple[str | None, float]:
    from digitdet.reading.numbers import read_candidates

    best = read_candidates(det["boxes"], det["scores"], det["labels"], s.whole_thresh, s.dedup_iou,
                           det.get("presence"))[:1]
    return (best[0].number, best[0].confidence) if best else (None, 0.0)


def shipped(rec: dict, s) -> str | None:
    from digitdet.reading.routing import vote

    if rec["views"] is None:
        return best_number(rec["whole"], s)[0]
    return best_number(vote(rec["views"], s), s)[0]


def extend(rec: dict, s) -> str | None:
    """shipped, but on a close-up the whole-photo reader's number wins when it holds the close-up reader's
    as a run of its digits and has more: the close-up reader dropped a digit the other read at its threshold."""
    got = shipped(rec, s)
    if rec["views"] is None:
        return got
    whole = best_number(rec["whole"], s)[0]
    if whole is not None and got is not None and len(whole) > len(got) and got in whole:
        return whole
    return got


def joins(rec: dict, s) -> str | None:
    """shipped, but on a close-up the whole-photo reader's detections vote beside the close-up reader's views
    (last: a tie still goes to the close-up reader's own scale)."""
    from digitdet.reading.routing import vote

    if rec["views"] is None:
        return shipped(rec, s)
    whole = dict(rec["whole"])
    if "presence" not in whole:
        whole["presence"] = whole["scores"]
    return best_number(vote([*rec["views"], whole], s), s)[0]


def voted(rec: dict, s, key: str) -> str | None:
    """shipped, but on a close-up the vote is over the close-up views cached under `key`."""
    from digitdet.reading.routing import vote

    if rec["views"] is None:
        return shipped(rec, s)
    return best_number(vote(rec[key], s), s)[0]


def whole_view(rec: dict, s) -> str | None:
    """shipped, but on a close-up each of the close-up reader's scales reads the whole image at that scale
    only (the cascade's last view), not first the regions its finder proposes: a region padded around a
    partly found number can cut off a digit beside it."""
    return voted(rec, s, "full")


def wide_pad(rec: dict, s) -> str | None:
    """shipped, but the close-up reader's cascade pads its finder's regions by WIDE_PAD of their height left
    and right (0.8 in the cascade's settings): a neighbour digit the finder missed is then whole in the view."""
    return voted(rec, s, "wide")


def longer_whole(rec: dict, s) -> str | None:
    """shipped, but at each close-up scale the whole-image view's detections replace the cascade's when they
    read a longer number holding the cascade's as a run of digits (a finder region cut a digit off)."""
    from digitdet.reading.routing import vote

    if rec["views"] is None:
        return shipped(rec, s)
    views = []
    for cascade, full in zip(rec["views"], rec["full"]):
        a, b = best_number(cascade, s)[0], best_number(full, s)[0]
        views.append(full if a is not None and b is not None and len(b) > len(a) and a in b else cascade)
    return best_number(vote(views, s), s)[0]


def edge(rec: dict, s) -> str | None:
    """shipped, but on a close-up a digit the winning view detects at EDGE or more (under the reading threshold)
    against the image's left or right border, beyond the read number's first or last digit and level with it,
    is read too: a digit cut by the crop keeps its class at a lower score (real crops cut through the last
    digit: 0 at 0.43, 7 at 0.84)."""
    from digitdet.reading.numbers import read_candidates
    from digitdet.reading.routing import vote

    if rec["views"] is None:
        return shipped(rec, s)
    det = vote(rec["views"], s)
    best = read_candidates(det["boxes"], det["scores"], det["labels"], s.whole_thresh, s.dedup_iou,
                           det["presence"])[:1]
    if not best or best[0].vertical:
        return best[0].number if best else None
    digits = sorted(best[0].digits, key=lambda d: d.box[0])
    width = rec["size"][0]
    sides: dict[str, tuple[float, int]] = {}
    for box, score, label in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()):
        if not EDGE <= score < s.whole_thresh:
            continue
        for side, ref in (("left", digits[0]), ("right", digits[-1])):
            rx0, ry0, rx1, ry1 = ref.box
            at_border = box[0] <= 0.02 * width if side == "left" else box[2] >= 0.98 * width
            beyond = box[2] < (rx0 + rx1) / 2 if side == "left" else box[0] > (rx0 + rx1) / 2
            level = min(box[3], ry1) - max(box[1], ry0) >= 0.5 * (ry1 - ry0)
            if at_border and beyond and level and score > sides.get(side, (0.0, 0))[0]:
                sides[side] = (score, int(label) - 1)  # labels 1..10 are digits 0..9
    left = str(sides["left"][1]) if "left" in sides else ""
    right = str(sides["right"][1]) if "right" in sides else ""
    return left + best[0].number + right


EDGE = 0.5
WIDE_PAD = 1.2
RULES = {"shipped": shipped, "extend": extend, "joins": joins, "whole-view": whole_view, "wide-pad": wide_pad,
         "longer-whole": longer_whole, "edge": edge}


def close_views_with(det, tensor, **changes) -> list[dict]:
    """The close-up reader's views (routing's _close_reading at each voting scale) with its cascades'
    settings changed for the call (each detector put back): regions=0 reads the whole image only,
    pad_x=WIDE_PAD pads the finder's regions wider."""
    from dataclasses import replace

    out = []
    for c in (det.close, *det.close_views):
        kept = c.settings
        c.settings = replace(kept, **changes)
        try:
            out.append(det._close_reading(c, tensor))
        finally:
            c.settings = kept
    return out


def readings(rec: dict, s) -> set[str | None]:
    """Every number the cached detections read: the ceiling any rule reading from them can reach."""
    dets = [rec["whole"]] + [d for key in ("views", "full", "wide") for d in rec[key] or []]
    return {best_number(d, s)[0] for d in dets}


def detections(reader, path: str, rules: list[str]) -> dict:
    """One image's cached detections: the whole-photo reader's, and on a close-up the close-up reader's at
    each voting scale through its cascade ("views"), on the whole image only ("full") and with wide pads
    ("wide"), each only when a rule asks for it."""
    import torch

    from digitdet.reading.routing import close_up_height

    det, s = reader.detector, reader.detector.settings
    image, _ = reader.load_image(path)
    tensor = reader._tensor(image)
    rec = {"whole": None, "views": None, "full": None, "wide": None, "size": (tensor.shape[-1], tensor.shape[-2])}
    with torch.inference_mode():
        rec["whole"] = det.whole([tensor])[0]
        if close_up_height(rec["whole"], s) < s.close_frac * tensor.shape[-2]:
            return rec
        rec["views"] = [det._close_reading(d, tensor) for d in (det.close, *det.close_views)]
        if {"whole-view", "longer-whole"} & set(rules):
            rec["full"] = close_views_with(det, tensor, regions=0)
        if "wide-pad" in rules:
            rec["wide"] = close_views_with(det, tensor, pad_x=WIDE_PAD)
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+")
    p.add_argument("--rules", default=",".join(RULES), help="comma-separated, of: " + ", ".join(RULES))
    p.add_argument("--oracle", action="store_true",
                   help="also the images some reading gets right (computes the whole-image and wide-pad views)")
    args = p.parse_args(argv)
    import torch
    from tqdm import tqdm

    from digitdet.reading.reader import Reader

    torch.set_num_threads(2)
    reader = Reader()
    s = reader.detector.settings
    rules = args.rules.split(",")
    cached = rules + ["whole-view", "wide-pad"] if args.oracle else rules
    totals = dict.fromkeys(rules + ["oracle"] * args.oracle, 0)
    n_all = 0
    for name in args.sets:
        items = items_of(name)
        right = dict.fromkeys(totals, 0)
        differ: dict[str, list[str]] = {r: [] for r in rules}
        never: list[str] = []
        for path, truth in tqdm(items, desc=name, leave=False, unit="img"):
            rec = detections(reader, path, cached)
            base = shipped(rec, s)
            if args.oracle:
                read = readings(rec, s)
                right["oracle"] += truth in read
                if truth not in read:
                    never.append(f"{Path(path).name}:{truth}:{'/'.join(sorted(map(str, read)))}")
            for r in rules:
                got = RULES[r](rec, s)
                right[r] += got == truth
                if got != base:
                    differ[r].append(f"{Path(path).name}:{truth}:{base}->{got}")
        n_all += len(items)
        for r in rules:
            totals[r] += right[r]
            print(f"{name}\t{r}\t{right[r]} / {len(items)}\t{' '.join(differ[r][:30])}", flush=True)
        if args.oracle:
            totals["oracle"] += right["oracle"]
            print(f"{name}\toracle\t{right['oracle']} / {len(items)}\tnever read: {' '.join(never[:30])}", flush=True)
    for r in totals:
        print(f"all\t{r}\t{totals[r]} / {n_all}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
