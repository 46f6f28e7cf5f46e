"""Lines with no number in them, for a line recogniser that can say so (the veto, reading/dispute.py):

    digitdet line prepare data/blank62 data/line50 --out data/line/blank62.npz --context 1 --blanks 24000
    digitdet line mine data/blank62 --out data/line/hard62.npz --n 6000 --seed 62

`blank_regions`: regions of `digitdet synth` photos clear of every digit and lookalike box, shaped as the
dispute reads a number's region; `prepare --blanks` writes their lines beside the close-ups'. `blank_crops`:
number-free crops as a user might send (benchmarks/blank_crops.py makes sets of them). `mine`: the hard ones,
the regions where the bundled pair reads a number in such a crop (its grain, a word's letters, a frame's edge
read as "1"): random regions are easy (the recogniser fine-tuned on them read 892 of 900 as none), these are
not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitdet import io
from digitdet.errors import DataError, first_line


def read_lines(path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a `digitdet line prepare` (or mine) file; DataError naming it when it is not one."""
    try:
        with np.load(path) as d:
            return d["x"], d["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a `digitdet line prepare` file ({first_line(exc)})") from None


def write_lines(out: str | Path, x: np.ndarray, y: np.ndarray) -> None:
    """A prepare (or mine) file, written atomically: x uint8 N x H x W x 3, y the numbers ("" for none)."""
    with io.atomic_path(out, suffix=".npz") as tmp, tmp.open("wb") as f:
        np.savez(f, x=x, y=y)


def blank_regions(folder: Path, n: int, context: float, rng: np.random.Generator, split: str = "train"
                  ) -> list[tuple[Path, tuple[int, int, int, int]]]:
    """`n` regions of a digitdet-synth split's photos with no digit and no lookalike in them (their boxes grown
    by a tenth of their height kept out; small print's digits are lookalikes), shaped as the dispute reads a
    number's region at `context` (line_region): a would-be number of 1-3 digits 12 px to two thirds of the
    photo high. Their truth is no number: where the pair reads a number in a wall or a word, the line learns
    to say there is none (the veto, reading/dispute.py). Fewer when the photos have no such room."""
    from digitdet.data.coco import load_coco
    from digitdet.reading.dispute import line_region

    coco = load_coco(folder / f"{split}.json", folder / split, check_files=False)
    out: list[tuple[Path, tuple[int, int, int, int]]] = []
    for _ in range(20 * n):
        if len(out) == n or not coco.images:
            break
        im = coco.images[int(rng.integers(len(coco.images)))]
        w, h_img = im["width"], im["height"]
        if h_img < 18:
            continue
        h = rng.uniform(12, h_img / 1.5)
        bw = int(rng.integers(1, 4)) * rng.uniform(0.45, 0.75) * h
        x, y = rng.uniform(0, max(w - bw, 1)), rng.uniform(0, h_img - h)
        region = line_region([x, y, x + bw, y + h], h, w, h_img, context)
        if holds_nothing(coco, im["id"], region):
            out.append((folder / split / im["file_name"], region))
    return out


def holds_nothing(coco, image_id: int, region) -> bool:
    """Whether `region` (x0, y0, x1, y1) of a CocoData image is clear of its digits and lookalikes, each box
    grown by a tenth of its height."""
    taken = np.concatenate([coco.boxes[image_id].reshape(-1, 4), coco.lookalikes.get(image_id, np.zeros((0, 4)))])
    grow = 0.1 * (taken[:, 3] - taken[:, 1])
    return not np.any((taken[:, 0] - grow < region[2]) & (taken[:, 2] + grow > region[0])
                      & (taken[:, 1] - grow < region[3]) & (taken[:, 3] + grow > region[1]))


def blank_crops(folders: list[Path], n: int, seed: int, split: str = "valid") -> list[tuple[Path, tuple]]:
    """(photo, crop box) for up to n number-free crops of the folders' split, 40-240 px high and 0.6-3 times as
    wide, clear of every digit and lookalike (holds_nothing), one a photo at most, the folders' photos taken
    in turn (a photo with no such room passed over)."""
    from digitdet.data.coco import load_coco

    rng = np.random.default_rng(seed)
    splits = [load_coco(f / f"{split}.json", f / split, check_files=False) for f in folders]
    order = [(k, c.images[i]) for i in range(max(len(c.images) for c in splits))
             for k, c in enumerate(splits) if i < len(c.images)]
    out: list[tuple[Path, tuple]] = []
    for k, im in order:
        if len(out) == n:
            break
        W, H = im["width"], im["height"]
        for _ in range(50):
            h = rng.uniform(40, min(H, 240)) if H > 40 else 0
            w = h * rng.uniform(0.6, 3.0)
            if not h or w > W:
                continue
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            box = (int(x), int(y), int(x + w), int(y + h))
            if holds_nothing(splits[k], im["id"], box):
                out.append((folders[k] / split / im["file_name"], box))
                break
    return out


def mine(folders: list[str | Path], out: str | Path, n: int, seed: int = 0, context: float = 1.0,
         progress: bool = True) -> dict:
    """Hard blank lines: up to `n` number-free crops of the folders' train photos (blank_crops) read by the
    bundled reader's pair (predict.line_margin=null: what the line would be asked about); where it reads a
    number, the line of that number's region (reading/dispute.line_region at `context`), truth "". Written
    to `out` as prepare writes (.npz x, y). Returns {'crops', 'lines'}."""
    from PIL import Image
    from tqdm import tqdm

    from digitdet.model.line import H, W, to_line
    from digitdet.reading.dispute import digit_height, line_region
    from digitdet.reading.reader import Reader

    reader = Reader(overrides=["predict.line_margin=null"])
    crops = blank_crops([Path(f) for f in folders], n, seed, split="train")
    xs = []
    for photo, box in tqdm(crops, desc="mine", unit="crop", disable=not progress):
        with Image.open(photo) as im:
            crop = im.convert("RGB").crop(box)
        got = reader.read_image(crop)
        if got.number is not None and got.candidates:
            best = got.candidates[0]
            xs.append(to_line(crop.crop(line_region(best.box, digit_height(best), crop.width, crop.height,
                                                     context))))
    if not xs:
        raise DataError(f"no number read in {len(crops)} number-free crops of {', '.join(map(str, folders))}")
    write_lines(out, np.stack(xs).reshape(-1, H, W, 3), np.array([""] * len(xs)))
    return {"crops": len(crops), "lines": len(xs)}


def fit_blank_head(recogniser: str | Path, lines: list[str | Path], out: str | Path, hard: list[str | Path] = (),
                   numbers: int = 20_000, blanks: int = 15_000, hard_weight: float = 4.0, seed: int = 0) -> dict:
    """The packed `recogniser` (pack_line_reader's file) with a no-number head (model/line.py blank_features ->
    logistic) fitted on its frozen features: `numbers` lines with a number and `blanks` without from the `lines`
    files (prepare's, with --blanks), and every line of the `hard` files (mine's) weighted `hard_weight`;
    standardised, L-BFGS, the standardisation folded into the head. The recogniser's own weights are copied
    as they are, so its readings and its dispute stay exactly as they were. Returns {'numbers', 'blanks',
    'hard', 'train_accuracy'}."""
    import torch

    from digitdet.model.line import as_batch, blank_features, load_line_reader

    packed = torch.load(recogniser, map_location="cpu", weights_only=True)
    if packed.get("kind") != "line-reader":
        raise DataError(f"{recogniser}: not a packed line recogniser (`digitdet line pack` writes one)")
    model = load_line_reader(recogniser)
    rng = np.random.default_rng(seed)
    x, y = zip(*(read_lines(f) for f in lines))
    xs, ys = np.concatenate(x), np.concatenate(y)
    has, none = np.flatnonzero(ys != ""), np.flatnonzero(ys == "")
    if len(has) < numbers or len(none) < blanks:
        raise DataError(f"{len(has)} number lines and {len(none)} blank lines in {', '.join(map(str, lines))}: "
                        f"fewer than {numbers} and {blanks}")
    pick = [xs[rng.choice(has, numbers, replace=False)], xs[rng.choice(none, blanks, replace=False)]]
    pick += [read_lines(f)[0] for f in hard]

    @torch.inference_mode()
    def features(a: np.ndarray) -> torch.Tensor:
        out = []
        for i in range(0, len(a), 512):
            h = model.encode(as_batch(a[i:i + 512]))
            out.append(blank_features(h, model.head(h)))
        return torch.cat(out) if out else torch.zeros(0, 1)

    f = torch.cat([features(a) for a in pick])
    n_hard = len(f) - numbers - blanks
    target = torch.cat([torch.zeros(numbers), torch.ones(blanks + n_hard)])
    weight = torch.cat([torch.ones(numbers + blanks), torch.full((n_hard,), hard_weight)])
    mu, sd = f.mean(0), f.std(0) + 1e-6
    z = (f - mu) / sd
    torch.manual_seed(seed)
    lin = torch.nn.Linear(f.shape[1], 1)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        out = (torch.nn.functional.binary_cross_entropy_with_logits(lin(z)[:, 0], target, reduction="none")
               * weight).mean() + 1e-4 * lin.weight.pow(2).sum()
        out.backward()
        return out

    opt.step(loss)
    w = lin.weight.detach() / sd  # (f - mu) / sd . w + b = f . (w / sd) + (b - mu . w / sd)
    b = lin.bias.detach() - (mu * w[0]).sum()
    accuracy = float(((torch.sigmoid(f @ w[0] + b) >= 0.5).float() == target).float().mean())
    packed["blank"] = {"weight": w.float(), "bias": b.float()}
    packed["meta"] = {**packed.get("meta", {}), "blank_head": {
        "lines": [str(p) for p in lines], "hard": [str(p) for p in hard], "numbers": numbers, "blanks": blanks,
        "hard_lines": n_hard, "hard_weight": hard_weight, "seed": seed, "train_accuracy": round(accuracy, 4)}}
    io.save_torch(out, packed)
    return {"numbers": numbers, "blanks": blanks, "hard": n_hard, "train_accuracy": accuracy}
