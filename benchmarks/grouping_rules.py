"""Reading rules compared on the same detections: the bundled pair detects each photo once (memoised on
disk), then every variant of reading.grouping's GroupingRules reads them. Prints number accuracy per set
and variant, what each variant fixes and breaks against the rules as shipped, and a bound: the photos
whose true digits are all among the digits read (left to right), i.e. what grouping and ranking could
reach with these detections. `--oracle`: two columns more on synthetic sets, the digits read judged by the
truth boxes (false ones dropped; then also relabelled), the ceiling of a re-classifier of the boxes.

    python benchmarks/grouping_rules.py data/val21/cut data/val21/relief test:cut real:real_plaques \\
        --variant slant=slant=0.7 --variant slant5=slant=0.5,slant_tol=0.6

Sets as in benchmarks/pair_with.py (a synth folder's valid split, `test:MODE`, `real:NAME`). The
detections are cached in data/detections/ under the set's name and a hash of the pair's files, the
predict settings and the shipped rules (the routing reads with them): delete the folder after changing
reading code that runs before the grouping (scans, routing).
Variants: `NAME=FIELD=VALUE[,FIELD=VALUE]`.
Choose rules on validation splits; the test splits and real sets are for looking after (docs/reading.md).
Routing and the cascade's "first view with a number" read with the shipped rules; only the final
reading of the detections changes here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_with import items_of, synthetic_split  # noqa: E402  (the same sets, read the same way)

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "data" / "detections"


def parse_variant(text: str):
    from digitdet.reading.grouping import GroupingRules

    name, _, spec = text.partition("=")
    known = [f.name for f in fields(GroupingRules)]
    values = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in known:
            raise SystemExit(f"--variant {text}: GroupingRules has no field {key!r} (it has {', '.join(known)})")
        values[key] = float(value)
    return name, replace(GroupingRules(), **values)


def detections(reader, name: str, items: list[tuple[str, str]]) -> list[dict]:
    """Per photo: the pair's detections in the file's pixels (as Reader.read_file reads them), cached."""
    import torch
    from tqdm import tqdm

    from digitdet.model.packed import bundled_reader_paths
    from digitdet.reading.grouping import GroupingRules

    # The routing reads the best number's height with the shipped rules: they are part of the key.
    digest = hashlib.sha256(str(reader.cfg.predict).encode() + str(GroupingRules()).encode())
    for file in bundled_reader_paths(reader.cfg.predict.close_frac):
        digest.update(file.read_bytes())
    key = digest.hexdigest()[:12]
    path = CACHE / f"{name.replace('/', '_').replace(':', '_')}-{key}.pt"
    if path.is_file():
        return torch.load(path)
    out = []
    for file, _ in tqdm(items, desc=name, leave=False, unit="img"):
        image, size = reader.load_image(file)
        out.append(reader._detections(reader._tensor(image), image.size, size))
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(out, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return out


def reading(det: dict, predict, rules) -> str:
    from digitdet.reading.numbers import read_number

    return read_number(det["boxes"], det["scores"], det["labels"], predict.read_thresh, predict.dedup_iou,
                       det.get("presence"), rules)


def within_reach(det: dict, predict, truth: str) -> bool:
    """The true digits, in order, are a subsequence of the digits read sorted left to right."""
    from digitdet.reading.numbers import read_digits

    kept = read_digits(det["boxes"], det["scores"], det["labels"], predict.read_thresh, predict.dedup_iou,
                       det.get("presence"))
    order = sorted(kept, key=lambda ip: float(det["boxes"][ip[0], 0] + det["boxes"][ip[0], 2]))
    digits = iter(str(int(det["labels"][i]) - 1) for i, _ in order)
    return truth != "-1" and all(c in digits for c in truth)


def truth_boxes(name: str) -> dict[str, tuple] | None:
    """{image file: (xyxy boxes, labels 1..10)} of a synthetic set; None for a real set (numbers only)."""
    from digitdet.data.coco import load_coco

    if (where := synthetic_split(name)) is None:
        return None
    folder, split = where
    coco = load_coco(folder / f"{split}.json", folder / split)
    return {str(folder / split / im["file_name"]): (coco.boxes.get(im["id"], []), coco.labels.get(im["id"], []))
            for im in coco.images}


def oracle_readings(det: dict, predict, boxes, labels) -> tuple[str, str]:
    """The reading with a perfect judge of the digits read: (false ones dropped, and every kept one given its
    true label). A box is true when it overlaps a true box at IoU >= 0.5 (the digit it matches best)."""
    import torch
    from torchvision.ops import box_iou

    from digitdet.reading.grouping import Digit, group_digits
    from digitdet.reading.numbers import NO_NUMBER, read_digits

    kept = read_digits(det["boxes"], det["scores"], det["labels"], predict.read_thresh, predict.dedup_iou,
                       det.get("presence"))
    truth = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if not kept or not len(truth):
        return NO_NUMBER, NO_NUMBER
    overlap, match = box_iou(det["boxes"][[i for i, _ in kept]].float(), truth).max(1)
    true = [(i, presence, labels[int(j)]) for (i, presence), o, j in zip(kept, overlap, match) if o >= 0.5]
    out = []
    for relabel in (False, True):
        best = group_digits([Digit(tuple(float(v) for v in det["boxes"][i]),
                                   int(label if relabel else det["labels"][i]) - 1, presence)
                             for i, presence, label in true])[:1]
        out.append(best[0].number if best else NO_NUMBER)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+")
    p.add_argument("--variant", action="append", default=[], help="NAME=FIELD=VALUE[,FIELD=VALUE]")
    p.add_argument("--show", type=int, default=12, help="fixed/broken photos listed per set and variant")
    p.add_argument("--oracle", action="store_true",
                   help="two more columns on synthetic sets: the digits read judged by the truth boxes (false ones "
                        "dropped; and relabelled): what a perfect re-classifier of the boxes could reach (totals: "
                        "synthetic sets only)")
    args = p.parse_args(argv)
    import torch

    from digitdet.reading.grouping import GroupingRules
    from digitdet.reading.reader import Reader

    torch.set_num_threads(2)
    variants = [("shipped", GroupingRules())] + [parse_variant(v) for v in args.variant]
    reader = Reader()
    predict = reader.cfg.predict
    print(f"pair: {reader.source}; reading threshold {predict.read_thresh}")
    extra = ["false dropped", "and relabelled"] if args.oracle else []
    print("| set | n | " + " | ".join([name for name, _ in variants] + ["digits all read", *extra]) + " |")
    print("|---|---:|" + "---:|" * (len(variants) + 1 + len(extra)))
    totals = [0] * (len(variants) + 2 + len(extra))
    notes = []
    for name in args.sets:
        items = items_of(name)
        dets = detections(reader, name, items)
        reads = [[reading(d, predict, rules) for d in dets] for _, rules in variants]
        right = [sum(r == t for r, (_, t) in zip(rs, items)) for rs in reads]
        reach = sum(within_reach(d, predict, t) for d, (_, t) in zip(dets, items))
        row = [len(items), *right, reach]
        if args.oracle:
            gt = truth_boxes(name)
            judged = [oracle_readings(d, predict, *gt[f]) for d, (f, _) in zip(dets, items)] if gt else None
            row += [sum(j[k] == t for j, (_, t) in zip(judged, items)) for k in (0, 1)] if judged else ["-", "-"]
        totals = [a + b if isinstance(b, int) else a for a, b in zip(totals, row)]
        print(f"| {name} | " + " | ".join(map(str, row)) + " |", flush=True)
        for (vname, _), rs in list(zip(variants, reads))[1:]:
            moved = [(Path(f).name, t, a, b) for (f, t), a, b in zip(items, reads[0], rs) if a != b]
            fixed = [f"{f}:{t} {a}->{b}" for f, t, a, b in moved if b == t]
            broke = [f"{f}:{t} {a}->{b}" for f, t, a, b in moved if a == t]
            if fixed or broke:
                notes.append(f"{name} {vname}: fixed {len(fixed)} {' '.join(fixed[:args.show])}; "
                             f"broke {len(broke)} {' '.join(broke[:args.show])}")
    print("| all | " + " | ".join(map(str, totals)) + " |")
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
