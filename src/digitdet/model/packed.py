"""The packed reader: a training checkpoint's model as float16 weights with the merged config, the tuned
reading threshold and its provenance ('meta'), loaded with weights_only=True. The reader shipped in
digitdet/weights is one; `Reader()` (digitdet.reading.reader) and `model.backbone_weights=bundled:...` load it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from digitdet import io
from digitdet.errors import DigitdetError, first_line
from digitdet.model.checkpoint import load_checkpoint

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# The whole-photo reader: reads every photo (weights/NAME.pt, described in weights/MODEL.md). Reader v1
# (weights/reader-resnet18-l3.pt) stays shipped: configs/cpu.yaml, and so the demo, starts from its trunk.
BUNDLED_READER = "reader-whole-resnet18-l3"
# The bundled reader's close-up reader (reading/routing.py): reads the photos whose number is large in them.
BUNDLED_CLOSE_READER = "reader-v2-resnet18-l3"
# The line recogniser (model/line.py) that may dispute the close-up reader's number (reading/dispute.py):
# shipped since 2026-12-06; an installation without the file reads with the pair alone.
BUNDLED_LINE_READER = "line-crnn"


def bundled_reader_path(name: str = BUNDLED_READER) -> Path:
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        raise DigitdetError(f"the bundled reader {path} is missing from this installation; "
                            "pass --checkpoint RUN/best.pt")
    return path


def bundled_reader_paths(close_frac: float | None, line_margin: float | None = None) -> list[Path]:
    """The files the bundled reader reads with: the whole-photo reader, then its close-up reader unless
    predict.close_frac is null (reading/routing.py), then the line recogniser when it is shipped and
    predict.line_margin is set."""
    names = [BUNDLED_READER] + ([BUNDLED_CLOSE_READER] if close_frac is not None else [])
    paths = [bundled_reader_path(name) for name in names]
    line = WEIGHTS_DIR / f"{BUNDLED_LINE_READER}.pt"
    if close_frac is not None and line_margin is not None and line.is_file():
        paths.append(line)
    return paths


def load_packed(path: Path) -> dict:
    """A packed reader ({'config', 'model' (float16 state dict), 'read_thresh', 'meta'}), loaded safely."""
    try:
        packed = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged installation
        raise DigitdetError(f"{path}: the reader weights cannot be loaded ({first_line(exc, typed=True)})") from None
    if not isinstance(packed, dict) or not {"config", "model", "read_thresh"} <= set(packed):
        raise DigitdetError(f"{path}: not a packed digitdet reader (needs config, model, read_thresh)")
    return packed


def pack_reader(checkpoint: str | Path, out: str | Path, meta: dict | None = None) -> dict:
    """Write a training checkpoint's model as a packed reader: float16 weights, the merged config, the
    tuned reading threshold and `meta` (data, command, metrics), loadable with weights_only=True."""
    ckpt = load_checkpoint(checkpoint)
    packed = {"config": ckpt["config"], "read_thresh": float(ckpt.get("read_thresh") or 0.65),
              "model": {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items()},
              "meta": json.loads(json.dumps(meta or {}, default=str))}  # plain types only: weights_only loads
    io.save_torch(out, packed)
    return packed


def load_model_weights(path: str) -> dict[str, torch.Tensor]:
    """Whole-model weights (float32) from a checkpoint file, from the bundled reader ("bundled:reader", the
    one Reader() uses) or from a packed reader shipped in digitdet/weights by name ("bundled:NAME" for
    weights/NAME.pt: a run that must start from one reader whatever the default becomes names it)."""
    if path.startswith("bundled:"):
        name = path.removeprefix("bundled:")
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))
        if name != "reader" and name not in shipped:  # a lookup in the list, never a path built from user text
            raise DigitdetError(f"{path}: no such shipped weights (shipped: reader, {', '.join(shipped)})")
        packed = load_packed(bundled_reader_path() if name == "reader" else WEIGHTS_DIR / f"{name}.pt")
        return {k: v.float() for k, v in packed["model"].items()}
    return load_checkpoint(path)["model"]
