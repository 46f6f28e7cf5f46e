"""A probe, not a reader: can a small line recogniser (CNN + BiLSTM + CTC, the design of PP-OCR's and
EasyOCR's recognisers) read a close-up's whole number where the shipped detector pair cannot?

The ceiling study (weights/MODEL.md, 2026-12-06) showed that no rule over the pair's readings reaches 0.95
on cut or relief: the detector drops or misreads an edge digit. A recogniser reads the close-up as one
line, learns the generator's truth for cut digits (>= 72 % of a digit's ink inside: a digit; <= 30 %:
not) and for letters after the number, and needs no boxes. This script measures it alone, on the same
validation splits `pair_with.py` reads, before anything is built on it.

    python benchmarks/line_probe.py prepare data/reader-v2-rc data/reader-v2-scale data/midcut \\
        --out logs/line/train.npz               # close-ups of digitdet-synth train splits, 32 px high
    python benchmarks/line_probe.py train logs/line/train.npz [more.npz ...] --out runs/line/crnn.pt --epochs 10 \\
        [--width 1.5] [--resume]                # checkpointed every 500 steps
    python benchmarks/line_probe.py eval runs/line/crnn.pt data/val21/crop data/val21/cut test:cut ...
    python benchmarks/line_probe.py eval runs/line/crnn.pt data/val21/cut --pair CACHE.jsonl --margins 2,4,8

A close-up is an image whose tallest digit box is at least 0.35 of its height (the pair's routing
threshold, reading/routing.py); the others (whole scene and sign photos) are left out. Sets are named as
in pair_with.py. Images are resized to 32 px high, keeping their aspect ratio up to 128 px wide (squashed
beyond), and padded on the right with their own edge.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

H, W = 32, 128
CLOSE_FRAC = 0.35
MAX_LEN = 8  # digits a number may have here; longer truths are left out of training


def to_line(img) -> np.ndarray:
    """A PIL image -> uint8 H x W x 3: its aspect kept up to W, padded on the right with its last column."""
    from PIL import Image

    img = img.convert("RGB")
    w = max(1, min(W, round(img.width * H / img.height)))
    a = np.asarray(img.resize((w, H), Image.BICUBIC))
    if w < W:
        a = np.concatenate([a, np.repeat(a[:, -1:], W - w, axis=1)], axis=1)
    return a


def as_batch(lines: np.ndarray):
    """uint8 N x H x W x 3 lines -> the float N x 3 x H x W batch in [0, 1] the recogniser takes."""
    import torch

    return torch.from_numpy(lines).permute(0, 3, 1, 2).float() / 255


def line_of(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return to_line(im)


def close_ups(folder: Path, split: str) -> list[tuple[Path, str]]:
    """(image path, number) of a digitdet-synth split's close-ups with a number of 1..MAX_LEN digits."""
    from digitdet.data.coco import load_coco
    from digitdet.training.evaluate import truth_numbers

    coco = load_coco(folder / f"{split}.json", folder / split)
    truth = truth_numbers(coco)
    out = []
    for im in coco.images:
        boxes = coco.boxes.get(im["id"], [])
        if len(boxes) == 0 or not 1 <= len(truth[im["id"]]) <= MAX_LEN or truth[im["id"]] == "-1":
            continue
        tallest = max(float(b[3]) - float(b[1]) for b in boxes)
        if tallest >= CLOSE_FRAC * im["height"]:
            out.append((folder / split / im["file_name"], truth[im["id"]]))
    return out


def prepare(args) -> int:
    from tqdm import tqdm

    items = [it for f in args.folders for it in close_ups(Path(f), "train")]
    x = np.zeros((len(items), H, W, 3), np.uint8)
    for i, (p, _) in enumerate(tqdm(items, desc="prepare", unit="img")):
        x[i] = line_of(p)
    y = np.array([t for _, t in items])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".tmp").open("wb") as f:  # nothing half-written under the name
        np.savez(f, x=x, y=y)
    out.with_suffix(".tmp").replace(out)
    lengths = np.bincount([len(t) for t in y])
    print(f"{len(items)} close-ups -> {args.out}; numbers by length {dict(enumerate(lengths.tolist()))}")
    return 0


def build(width: float = 1.0):
    """The recogniser; `width` scales every layer's channels (1.0: 0.59 M parameters)."""
    import torch.nn as nn

    def c(n):
        return int(round(n * width / 8)) * 8

    def block(cin, cout, pool):
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return layers + ([nn.MaxPool2d(pool)] if pool else [])

    class LineReader(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = nn.Sequential(
                *block(3, c(32), 2), *block(c(32), c(48), 2),  # 8 x 32
                *block(c(48), c(64), None), *block(c(64), c(64), (2, 1)),  # 4 x 32
                *block(c(64), c(96), None), *block(c(96), c(96), (2, 1)),  # 2 x 32
                nn.Conv2d(c(96), c(192), (2, 1), bias=False), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True))  # 1 x 32
            self.rnn = nn.LSTM(c(192), c(128), bidirectional=True, batch_first=True)
            self.head = nn.Linear(2 * c(128), 11)  # 0 = CTC blank, 1..10 = digits 0..9

        def forward(self, x):  # x: B x 3 x H x W in [0, 1]
            f = self.cnn(x - 0.5).squeeze(2).transpose(1, 2)  # B x T x C
            return self.head(self.rnn(f)[0])  # B x T x 11

    return LineReader()


def decode(logits) -> list[tuple[str, float]]:
    """Greedy CTC: (number, product of the path's top probabilities) per image."""
    import torch

    prob, idx = logits.softmax(-1).max(-1)
    out = []
    for p, k in zip(prob, idx):
        keep = torch.ones_like(k, dtype=torch.bool)
        keep[1:] = k[1:] != k[:-1]
        digits = [int(c) - 1 for c in k[keep & (k > 0)]]
        out.append(("".join(map(str, digits)) or "-1", float(p.prod())))
    return out


def log_likelihood(logits, numbers: list[str | None]) -> list[float]:
    """log P(number | line) under CTC, summed over every alignment; None or "-1" (no number): the all-blank line."""
    import torch
    import torch.nn.functional as F

    lp = logits.log_softmax(-1).transpose(0, 1)  # T x B x 11, as ctc_loss takes it
    flat, lens = ctc_targets([n if n and n.isdigit() else "" for n in numbers])
    frames = torch.full((lp.shape[1],), lp.shape[0], dtype=torch.long)
    return (-F.ctc_loss(lp, flat, frames, lens, reduction="none", zero_infinity=False)).tolist()


def ctc_targets(numbers):
    """Digit strings -> CTC's concatenated targets (digit d is class d + 1; 0 is the blank) and their lengths."""
    import torch

    return (torch.tensor([int(c) + 1 for n in numbers for c in n], dtype=torch.long),
            torch.tensor([len(n) for n in numbers], dtype=torch.long))


def augment(xb, rng: np.random.Generator):
    """Photometric changes only: a geometric one could move a cut digit across the 30/72 % truth rule."""
    import torch

    b = xb.shape[0]
    gain = torch.from_numpy(rng.uniform(0.6, 1.4, (b, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.2, 0.2, (b, 1, 1, 1)).astype(np.float32))
    mean = xb.mean((1, 2, 3), keepdim=True)
    xb = (xb - mean) * gain + mean + bias
    gray = torch.from_numpy(rng.random(b) < 0.2)
    xb[gray] = xb[gray].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    inv = torch.from_numpy(rng.random(b) < 0.1)
    xb[inv] = 1 - xb[inv]
    return xb.clamp(0, 1)


def train(args) -> int:
    """Checkpointed every --save-every steps and at each epoch's end; --resume goes on from the last one
    (each epoch's order and each batch's augmentation are drawn from (seed, epoch[, step]), so a resumed run
    sees what an uninterrupted one would)."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    parts = [np.load(f) for f in args.data]
    x, y = np.concatenate([d["x"] for d in parts]), np.concatenate([d["y"] for d in parts])
    model = build(args.width)
    per_epoch = len(x) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * per_epoch,
                                                pct_start=0.1)
    out = Path(args.out)
    epoch0, step0, seen = 0, 0, 0
    if args.resume and out.is_file():
        ck = torch.load(out, map_location="cpu")
        model.load_state_dict(ck["state"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        epoch0, step0, seen = ck["epoch"], ck["step"], ck["seen"]
        print(f"resumed {out}: epoch {epoch0}, step {step0}, {seen} views")

    def save(epoch, step):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        torch.save({"state": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "step": step, "seen": seen, "args": vars(args)}, tmp)
        tmp.replace(out)

    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    t0, seen0 = time.time(), seen
    bar = tqdm(total=args.epochs * per_epoch, initial=epoch0 * per_epoch + step0, desc="train", unit="step")
    for epoch in range(epoch0, args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(x))
        for s in range(step0 if epoch == epoch0 else 0, per_epoch):
            j = order[s * args.batch:(s + 1) * args.batch]
            rng = np.random.default_rng([args.seed, epoch, s])
            xb = augment(as_batch(x[j]), rng)
            targets, lengths = ctc_targets(y[j])
            logp = model(xb).log_softmax(-1).transpose(0, 1)  # T x B x 11
            loss = ctc(logp, targets, torch.full((len(j),), logp.shape[0], dtype=torch.long), lengths)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            seen += len(j)
            bar.update()
            rate = (seen - seen0) / (time.time() - t0)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", img_s=f"{rate:.0f}")
            if (s + 1) % args.save_every == 0 and s + 1 < per_epoch:
                save(epoch, s + 1)
        save(epoch + 1, 0)
    bar.close()
    took = time.time() - t0
    print(f"{seen} views ({seen - seen0} this run) in {took / 60:.1f} min ({(seen - seen0) / took:.0f} img/s) -> {out}")
    return 0


def evaluate(args) -> int:
    import torch

    import pair_with

    torch.set_num_threads(2)
    ck = torch.load(args.checkpoint, map_location="cpu")
    model = build(ck["args"].get("width", 1.0))
    model.load_state_dict(ck["state"])
    model.eval()
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
    a = sub.add_parser("prepare")
    a.add_argument("folders", nargs="+")
    a.add_argument("--out", required=True)
    a = sub.add_parser("train")
    a.add_argument("data", nargs="+", help="prepare's .npz files, trained on together")
    a.add_argument("--out", required=True)
    a.add_argument("--epochs", type=int, default=12)
    a.add_argument("--batch", type=int, default=64)
    a.add_argument("--lr", type=float, default=2e-3)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--width", type=float, default=1.0, help="channels x this")
    a.add_argument("--save-every", type=int, default=500, help="steps between checkpoints")
    a.add_argument("--resume", action="store_true", help="go on from --out")
    a = sub.add_parser("eval")
    a.add_argument("checkpoint")
    a.add_argument("sets", nargs="+")
    a.add_argument("--pair", nargs="+", help="level_probe.py --cache files of the same sets: add the pair's count "
                   "and the combination rule's")
    a.add_argument("--taus", default="0.9,0.95,0.99,0.999", help="the override rule's thresholds")
    a.add_argument("--margins", default="1,2,4,8,16", help="the dispute rule's log-likelihood margins (nats)")
    args = p.parse_args(argv)
    return {"prepare": prepare, "train": train, "eval": evaluate}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
