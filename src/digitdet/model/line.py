"""The line recogniser: a close-up read as one line of text (CNN + BiLSTM + CTC, the design of PP-OCR's and
EasyOCR's recognisers), with no boxes. The bundled reader consults it on close-ups only, where it disputes
the detector pair's number (reading/dispute.py); it is trained by `digitdet line` (training/line.py) and
shipped as weights/line-crnn.pt (weights/MODEL.md).

A line is the image resized to H = 32 px high, its aspect kept up to W = 128 px wide (squashed beyond),
padded on the right with its own last column. The network's 32 time steps are 4 px of the line each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitdet import io
from digitdet.errors import DigitdetError, first_line

H, W = 32, 128
STRIDE = 4  # line pixels per time step


def line_width(width: int, height: int) -> int:
    """The width an image of (width, height) takes in its line before padding: aspect kept, 1..W px."""
    return max(1, min(W, round(width * H / height)))


def to_line(img) -> np.ndarray:
    """A PIL image -> uint8 H x W x 3 (see the module doc)."""
    from PIL import Image

    img = img.convert("RGB")
    w = line_width(img.width, img.height)
    a = np.asarray(img.resize((w, H), Image.BICUBIC))
    if w < W:
        a = np.concatenate([a, np.repeat(a[:, -1:], W - w, axis=1)], axis=1)
    return a


def as_batch(lines: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 lines -> the float N x 3 x H x W batch in [0, 1] the recogniser takes. Lines may be
    read-only (np.asarray of a PIL image): torch.tensor copies them (from_numpy would warn the caller)."""
    return torch.tensor(lines).permute(0, 3, 1, 2).float() / 255


def _channels(n: int, width: float) -> int:
    return int(round(n * width / 8)) * 8


def _block(cin: int, cout: int, pool) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return layers + ([nn.MaxPool2d(pool)] if pool else [])


class LineReader(nn.Module):
    """forward(B x 3 x H x W in [0, 1]) -> B x 32 x 11 logits (class 0: the CTC blank, d + 1: digit d).
    `width` scales every layer's channels (1.0: 0.59 M parameters, 1.5: 1.3 M)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = width

        def c(n):
            return _channels(n, width)

        self.cnn = nn.Sequential(
            *_block(3, c(32), 2), *_block(c(32), c(48), 2),  # 8 x 32
            *_block(c(48), c(64), None), *_block(c(64), c(64), (2, 1)),  # 4 x 32
            *_block(c(64), c(96), None), *_block(c(96), c(96), (2, 1)),  # 2 x 32
            nn.Conv2d(c(96), c(192), (2, 1), bias=False), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True))  # 1 x 32
        self.rnn = nn.LSTM(c(192), c(128), bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * c(128), 11)
        self.blank: nn.Linear | None = None  # the no-number head (training/blanks.fit_blank_head), when fitted
        # A second recogniser, trained with number-free lines, that may also say a line holds no number
        # (pack_line_reader(veto=...)): this one's readings and dispute stay as they were.
        self.vetoer: LineReader | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The CTC logits alone (B x 32 x 11); `read` adds the no-number probability."""
        return self.head(self.encode(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The BiLSTM's outputs, B x T x 2C: what the CTC head and the no-number head read."""
        return self.rnn(self.cnn(x - 0.5).squeeze(2).transpose(1, 2))[0]

    def read(self, x: torch.Tensor, numbers: list[list[str | None]] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits B x 32 x 11, the probability per line that it holds no number, or None where nothing can
        say): the larger of the no-number head's probability and, with a vetoer and `numbers` (for each line,
        the numbers it may be read as besides this recogniser's own reading of it), P(no number) / (P(no
        number) + P(the likeliest of them and its own reading)) under the vetoer's CTC: it vetoes only where no
        number is likelier than any reading (a line with none to weigh: the head alone)."""
        h = self.encode(x)
        logits = self.head(h)
        says = []
        if self.blank is not None:
            says.append(torch.sigmoid(self.blank(blank_features(h, logits))[:, 0]))
        if self.vetoer is not None and numbers is not None:
            v = self.vetoer(x)
            none = log_likelihood(v, [None] * len(numbers))
            said = []
            for b, (offered, (own, _)) in enumerate(zip(numbers, decode(logits))):
                ns = list(dict.fromkeys(n for n in [*offered, own] if n is not None))
                best = max(log_likelihood(v[b:b + 1].expand(len(ns), -1, -1), ns)) if ns else None
                said.append(0.0 if best is None else float(torch.sigmoid(torch.tensor(none[b]) - torch.tensor(best))))
            says.append(torch.tensor(said))
        return logits, torch.stack(says).amax(0) if says else None


def blank_features(h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """What the no-number head sees of a line: the BiLSTM outputs' max and mean over time, the likeliest
    digit's and the least likely blank's log-probability anywhere (B x (4C + 2))."""
    lp = logits.log_softmax(-1)
    return torch.cat([h.amax(1), h.mean(1), lp[..., 1:].amax((1, 2))[:, None], lp[..., 0].amin(1)[:, None]], 1)


def ctc_targets(numbers) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit strings -> CTC's concatenated targets (digit d is class d + 1; 0 is the blank) and their lengths."""
    return (torch.tensor([int(c) + 1 for n in numbers for c in n], dtype=torch.long),
            torch.tensor([len(n) for n in numbers], dtype=torch.long))


def decode(logits: torch.Tensor) -> list[tuple[str | None, list[int]]]:
    """Greedy CTC per line: (the number, None when no digit; the time step where each of its digits starts)."""
    idx = logits.argmax(-1)
    out = []
    for k in idx:
        starts = [t for t in range(len(k)) if k[t] > 0 and (t == 0 or k[t] != k[t - 1])]
        out.append(("".join(str(int(k[t]) - 1) for t in starts) or None, starts))
    return out


def log_likelihood(logits: torch.Tensor, numbers: list[str | None]) -> list[float]:
    """log P(number | line) under CTC, summed over every alignment; None (no number): the all-blank line."""
    lp = logits.float().log_softmax(-1).transpose(0, 1)  # T x B x 11, as ctc_loss takes it
    flat, lens = ctc_targets([n if n and n.isdigit() else "" for n in numbers])
    frames = torch.full((lp.shape[1],), lp.shape[0], dtype=torch.long)
    return (-F.ctc_loss(lp, flat, frames, lens, reduction="none", zero_infinity=False)).tolist()


def quantise_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight matrix or kernel -> (int8 values, a float16 scale per output row): symmetric, w ~ q * scale."""
    flat = w.float().reshape(w.shape[0], -1)
    scale = flat.abs().amax(1).clamp_min(1e-12) / 127
    return (flat / scale[:, None]).round().clamp(-127, 127).to(torch.int8).reshape(w.shape), scale.half()


def pack_line_reader(checkpoint: str | Path, out: str | Path, note: str = "", int8: bool = False,
                     veto: str | Path | None = None) -> dict:
    """A training checkpoint (training/line.py) -> the shipped file: float16 weights, the width and 'meta'
    (the settings, data and views it was trained with, and `note`), loadable with weights_only=True.
    int8: every kernel and matrix (all but biases and BatchNorm's vectors) is stored as int8 with a scale per
    output row under 'int8' instead, half the bytes; a width-2.0 recogniser then fits the shipped weights'
    40 MB (issue 22) where float16 would not. The shipped recogniser so stored read 5 of 1,200 validation
    close-ups differently from its float16 file (1,067 right against 1,066).
    `checkpoint` may also be a packed file, re-packed (e.g. as int8) with its no-number head and without a
    vetoer. `veto`: a second recogniser (checkpoint or packed file), packed the same way under 'veto', that may
    also say a line holds no number (LineReader.read)."""
    packed = _packed(checkpoint, note, int8)
    if veto is not None:
        packed["veto"] = _packed(veto, "the vetoer (predict.line_veto)", int8)
    io.save_torch(out, packed)
    return packed


def _packed(checkpoint: str | Path, note: str, int8: bool) -> dict:
    try:
        ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if ck.get("kind") == "line-reader":  # already packed: its weights as stored, its provenance kept
            state = _state(ck)
            meta = dict(ck["meta"]) | {"note": note or ck["meta"].get("note", "")}
        else:
            state = ck["state"]
            meta = {k: ck[k] for k in ("settings", "data", "close_ups", "seen", "epoch")} | {"note": note}
        small = {k for k, v in state.items() if int8 and v.is_floating_point() and v.dim() >= 2}
        packed = {"kind": "line-reader", "width": float(ck["width"]), "meta": meta,
                  "model": {k: (v.half() if v.is_floating_point() else v) for k, v in state.items() if k not in small}}
        if small:
            packed["int8"] = {k: dict(zip(("q", "scale"), quantise_int8(state[k]))) for k in sorted(small)}
        if "blank" in ck:  # training/blanks.fit_blank_head's no-number head, fitted on these features
            packed["blank"] = ck["blank"]
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line naming it
        raise DigitdetError(f"{checkpoint}: not a `digitdet line train` checkpoint "
                            f"({first_line(exc, typed=True)})") from None
    return packed


def _state(ck: dict) -> dict[str, torch.Tensor]:
    """A packed file's or a checkpoint's recogniser weights, float32 (int8 ones dequantised)."""
    stored = ck["model" if "model" in ck else "state"]
    state = {k: v.float() if v.is_floating_point() else v for k, v in stored.items()}
    for k, q in ck.get("int8", {}).items():  # pack_line_reader(int8=True)'s kernels and matrices
        state[k] = q["q"].float() * q["scale"].float().reshape(-1, *[1] * (q["q"].dim() - 1))
    return state


def load_line_reader(path: str | Path) -> LineReader:
    """The recogniser in a packed file (pack_line_reader's) or a training checkpoint, in eval mode, float32."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        model = _reader(ck)
        if "veto" in ck:  # pack_line_reader(veto=...)'s second recogniser
            model.vetoer = _reader(ck["veto"]).eval()
        if "blank" in ck:  # training/blanks.fit_blank_head's no-number head
            w = ck["blank"]["weight"].float()
            model.blank = nn.Linear(w.shape[1], 1)
            model.blank.load_state_dict({"weight": w, "bias": ck["blank"]["bias"].float()})
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line naming it
        raise DigitdetError(f"{path}: not a digitdet line recogniser ({first_line(exc, typed=True)})") from None
    return model.eval()


def _reader(ck: dict) -> LineReader:
    model = LineReader(float(ck["width"]))
    model.load_state_dict(_state(ck))
    return model
