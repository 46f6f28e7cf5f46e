"""Batched inference, stateless: detections per image for a loader (what validation, predict, errors and
the studies share), and the autocast rule training uses too."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from tqdm import tqdm


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """Mixed precision on CUDA when `amp` (config train.amp) is on; full float32 otherwise and on CPU."""
    return torch.autocast(device.type, enabled=bool(amp) and device.type == "cuda")


@torch.inference_mode()
def run_inference(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    *,
    progress: bool = True,
    desc: str = "predict",
    amp: bool = True,
) -> list[dict]:
    """Detections per image: [{'image_id', 'boxes' (N,4) xyxy float32, 'scores' (N,), 'labels' (N,)
    [, 'presence' (N,) from reading.cascade or reading.pyramid]}].

    Boxes are in the coordinates of the images the loader yields; `loader` yields (images, targets) and
    each target carries 'image_id' and optionally 'scale' = (sx, sy), which boxes are divided by to
    return to original-image pixels (undoing the data pipeline's upsampling). `amp`: mixed precision on
    CUDA (pass the config's train.amp; it has no effect on the CPU).
    """
    model.eval()
    out: list[dict] = []
    for imgs, targets in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
        imgs = [im.to(device, non_blocking=True) for im in imgs]
        with autocast(device, amp):
            dets = model(imgs)
        for det, target in zip(dets, targets):
            boxes = det["boxes"].float().cpu()
            sx, sy = target.get("scale", (1.0, 1.0))
            if (sx, sy) != (1.0, 1.0):
                boxes = boxes / torch.tensor([sx, sy, sx, sy])
            out.append(
                {
                    "image_id": int(target["image_id"]),
                    "boxes": boxes.numpy(),
                    "scores": det["scores"].float().cpu().numpy(),
                    "labels": det["labels"].cpu().numpy(),
                }
            )
            if "presence" in det:  # reading.cascade/pyramid measured each glyph's presence in its own view
                out[-1]["presence"] = det["presence"].float().cpu().numpy()
    return out
