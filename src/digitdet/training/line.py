"""Training the line recogniser (model/line.py) on the close-ups of `digitdet synth` folders:

    digitdet line prepare data/line40 data/line41 --out data/line/train.npz   # close-ups -> 32 px lines
    digitdet line train data/line/train.npz --out runs/line/line.pt --width 1.5 --epochs 4 [--resume]
    digitdet line train A.npz B.npz --out runs/line2/line.pt --init weights/line-crnn.pt --lr 5e-4 --epochs 1
    digitdet line pack runs/line/line.pt --out src/digitdet/weights/line-crnn.pt

A close-up is an image whose tallest digit box is at least CLOSE_FRAC of its height: the routing's threshold
(reading/routing.py), so the recogniser learns the photos it is consulted on, with the generator's truth for
cut digits and letters after the number. scripts/train_line.sh is the shipped recogniser's one command.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from digitdet import io
from digitdet.errors import DataError
from digitdet.model.line import H, LineReader, W, as_batch, ctc_targets, to_line
from digitdet.training.blanks import blank_regions, read_lines, write_lines

CLOSE_FRAC = 0.35
MAX_LEN = 8  # digits a number may have here; longer truths are left out


def close_ups(folder: Path, split: str = "train") -> list[tuple[Path, str, np.ndarray, tuple[int, int]]]:
    """(image path, number, its digit boxes N x 4 xyxy, the image's (width, height)) of a digitdet-synth
    split's close-ups with a number of 1..MAX_LEN digits."""
    from digitdet.data.coco import load_coco
    from digitdet.training.evaluate import truth_numbers

    coco = load_coco(folder / f"{split}.json", folder / split, check_files=False)
    truth = truth_numbers(coco)
    out = []
    for im in coco.images:
        boxes, number = coco.boxes.get(im["id"], []), truth[im["id"]]
        if len(boxes) == 0 or not number.isdigit() or not 1 <= len(number) <= MAX_LEN:
            continue
        if max(float(b[3]) - float(b[1]) for b in boxes) >= CLOSE_FRAC * im["height"]:
            out.append((folder / split / im["file_name"], number, np.asarray(boxes, np.float64).reshape(-1, 4),
                        (im["width"], im["height"])))
    return out


def pair_like_region(boxes: np.ndarray, size: tuple[int, int], context: float,
                     rng: np.random.Generator) -> tuple[int, int, int, int]:
    """The part of a close-up the dispute would read (reading/dispute.line_region at `context`) around its
    number, its truth `boxes` varied as the pair's box varies: the whole photo 1 time in 10 (the pair read
    nothing), an end digit left out 15 % of the time at each end (the pair's commonest miss: the line must
    still read it inside the margin) and each side moved by up to 0.15 of a digit's height."""
    from digitdet.reading.dispute import line_region

    if rng.random() < 0.1:
        return 0, 0, *size
    b = boxes[np.argsort(boxes[:, 0] + boxes[:, 2])]
    if len(b) > 1 and rng.random() < 0.15:
        b = b[1:]
    if len(b) > 1 and rng.random() < 0.15:
        b = b[:-1]
    h = float(np.median(b[:, 3] - b[:, 1]))
    box = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()] + rng.uniform(-0.15, 0.15, 4) * h
    return line_region(box, h, size[0], size[1], context)


def _line_of(job: tuple) -> np.ndarray:
    """The line of a (path, region or None) job."""
    from PIL import Image

    path, region = job
    try:
        with Image.open(path) as im:
            return to_line(im.crop(region) if region else im)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read as an image ({exc})") from None


def prepare(folders: list[str | Path], out: str | Path, workers: int | None = None,
            progress: bool = True, context: float | None = None, seed: int = 0, blanks: int = 0) -> dict:
    """The close-ups of each folder's train split as lines, written to `out` (.npz: x uint8 N x H x W x 3,
    y the numbers) atomically; with `context`, the lines of the regions around their numbers that the
    dispute reads at predict.line_context = context (pair_like_region, drawn from `seed`). `blanks`: that many
    lines more, of regions with no number (blanks.blank_regions at `context` or 1.0, from every photo of the
    folders in turn), their truth "". Returns {'close_ups', 'blanks', 'by_length'}."""
    from tqdm import tqdm

    items = [it for f in folders for it in close_ups(Path(f))]
    rng = np.random.default_rng(seed)
    jobs = [(p, None if context is None else pair_like_region(b, size, context, rng)) for p, _, b, size in items]
    if blanks:
        per = -(-blanks // len(folders))
        found = [r for f in folders for r in blank_regions(Path(f), per, context or 1.0, rng)][:blanks]
        jobs += found
        items += [(p, "", None, None) for p, _ in found]
    if not items:
        raise DataError(f"no close-ups in the train splits of {', '.join(map(str, folders))}")
    x = np.zeros((len(items), H, W, 3), np.uint8)
    with ProcessPoolExecutor(workers) as pool:
        lines = pool.map(_line_of, jobs, chunksize=256)
        for i, a in enumerate(tqdm(lines, total=len(items), desc="prepare", unit="img", disable=not progress)):
            x[i] = a
    y = np.array([n for _, n, _, _ in items])
    write_lines(out, x, y)
    return {"close_ups": int(np.sum(y != "")), "blanks": int(np.sum(y == "")),
            "by_length": dict(enumerate(np.bincount([len(t) for t in y]).tolist()))}


def augment(xb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Photometric changes only: a geometric one could move a cut digit across the generator's truth rule
    (>= 72 % of its ink inside: a digit; <= 30 %: not)."""
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


@dataclass(frozen=True)
class LineSettings:
    epochs: int = 4
    batch: int = 64
    lr: float = 2e-3
    width: float = 1.5
    seed: int = 0
    save_every: int = 500  # steps between checkpoints
    init: str = ""  # a line recogniser (checkpoint or packed file) to start from; "": from scratch


def train(data: list[str | Path], out: str | Path, settings: LineSettings = LineSettings(), resume: bool = False,
          progress: bool = True) -> dict:
    """Train on prepare's .npz files together (from scratch, or from settings.init's weights with a fresh
    optimiser and schedule); a checkpoint every save_every steps and at each epoch's end.
    `resume` goes on from `out` (each epoch's order and each batch's augmentation are drawn from (seed, epoch[,
    step]), so a resumed run sees what an uninterrupted one would). Returns {'views', 'minutes', 'img_s'}."""
    from tqdm import tqdm

    s = settings
    torch.manual_seed(s.seed)
    parts = [read_lines(f) for f in data]
    # one file is taken as it is: a copy of 220,000 lines would hold another 2.7 GB
    x, y = parts[0] if len(parts) == 1 else (np.concatenate([d[0] for d in parts]),
                                             np.concatenate([d[1] for d in parts]))
    if len(x) < s.batch:
        raise DataError(f"{len(x)} close-ups in {', '.join(map(str, data))}: fewer than one batch ({s.batch})")
    model = LineReader(s.width).to(memory_format=torch.channels_last)  # 10-20 % faster on CPU (2026-12-06)
    if s.init and not (resume and Path(out).is_file()):
        from digitdet.model.line import load_line_reader

        start = load_line_reader(s.init)
        if start.width != s.width:
            raise DataError(f"{s.init}: a recogniser of width {start.width}, not {s.width}; pass --width {start.width}")
        # the recogniser's own weights: a shipped file's no-number head and vetoer are not trained here
        model.load_state_dict({k: v for k, v in start.state_dict().items() if not k.startswith(("blank.", "vetoer."))})
    per_epoch = len(x) // s.batch
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=s.epochs * per_epoch, pct_start=0.1)
    out = Path(out)
    epoch0, step0, seen = 0, 0, 0
    if resume and out.is_file():
        ck = torch.load(out, map_location="cpu", weights_only=True)
        if {"init": ""} | ck["settings"] != asdict(s):  # checkpoints before `init` existed lack it
            raise DataError(f"{out}: trained with {ck['settings']}, not {asdict(s)}; resume with the same settings")
        model.load_state_dict(ck["state"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        epoch0, step0, seen = ck["epoch"], ck["step"], ck["seen"]
        print(f"resumed {out}: epoch {epoch0}, step {step0}, {seen} views")

    def save(epoch: int, step: int) -> None:
        io.save_torch(out, {"state": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "epoch": epoch, "step": step, "seen": seen, "width": s.width, "settings": asdict(s),
                            "data": [str(f) for f in data], "close_ups": len(x)})

    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    t0, seen0 = time.time(), seen
    bar = tqdm(total=s.epochs * per_epoch, initial=epoch0 * per_epoch + step0, desc="train line", unit="step",
               disable=not progress)
    for epoch in range(epoch0, s.epochs):
        order = np.random.default_rng([s.seed, epoch]).permutation(len(x))
        for step in range(step0 if epoch == epoch0 else 0, per_epoch):
            j = order[step * s.batch:(step + 1) * s.batch]
            xb = augment(as_batch(x[j]), np.random.default_rng([s.seed, epoch, step]))
            xb = xb.contiguous(memory_format=torch.channels_last)
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
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}",
                            img_s=f"{(seen - seen0) / max(time.time() - t0, 1e-9):.0f}")
            if (step + 1) % s.save_every == 0 and step + 1 < per_epoch:
                save(epoch, step + 1)
        save(epoch + 1, 0)
    bar.close()
    took = time.time() - t0
    return {"views": seen, "views_this_run": seen - seen0, "minutes": took / 60,
            "img_s": (seen - seen0) / max(took, 1e-9)}
