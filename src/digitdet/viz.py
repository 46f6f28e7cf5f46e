"""Pictures for people: the learning curve and galleries of images with boxes and read numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitdet import io

_PRED = (255, 40, 40)
_TRUTH = (40, 220, 60)


def plot_curve(history: list[dict], path: str | Path) -> None:
    """Epoch vs training loss (left axis) and validation mAP / number accuracy (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(epochs, [h["train"]["loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["val"]["AP"] or 0 for h in history], "s-", color="tab:red", label="val mAP")
    ax2.plot(epochs, [h["val_number_accuracy"] for h in history], "^--", color="tab:green",
             label="val number acc.")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("validation")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title("digitdet learning curve")
    fig.tight_layout()
    io.save_figure(path, fig)
    plt.close(fig)


@dataclass
class Panel:
    """One gallery cell: an image with predicted (and optionally true) boxes and a caption."""

    image: Image.Image
    boxes: np.ndarray  # (N,4) xyxy, image pixels
    labels: np.ndarray  # (N,) 1..10
    caption: str
    truth_boxes: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def _draw_panel(panel: Panel, cell: int) -> Image.Image:
    img = panel.image.convert("RGB")
    scale = cell / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.BICUBIC)
    canvas = Image.new("RGB", (cell, cell + 16), (24, 24, 24))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    if panel.truth_boxes is not None:
        for box in np.asarray(panel.truth_boxes).reshape(-1, 4) * scale:
            draw.rectangle(box.tolist(), outline=_TRUTH, width=1)
    for box, label in zip(np.asarray(panel.boxes).reshape(-1, 4) * scale, np.asarray(panel.labels)):
        draw.rectangle(box.tolist(), outline=_PRED, width=2)
        draw.text((box[0] + 1, max(0, box[1] - 11)), str(int(label) - 1), fill=_PRED)
    draw.text((3, cell + 2), panel.caption[:40], fill=(240, 240, 240))
    return canvas


def save_gallery(panels: Sequence[Panel], path: str | Path, *, cols: int = 6, cell: int = 160,
                 title: str | None = None) -> None:
    """A PNG grid of panels (predictions red, ground truth green)."""
    if not panels:
        return
    cols = min(cols, len(panels))
    rows = (len(panels) + cols - 1) // cols
    top = 18 if title else 0
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 16) + top), (0, 0, 0))
    if title:
        ImageDraw.Draw(sheet).text((4, 3), title, fill=(255, 255, 255))
    for k, panel in enumerate(panels):
        sheet.paste(_draw_panel(panel, cell), ((k % cols) * cell, top + (k // cols) * (cell + 16)))
    with io.atomic_path(path, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")
