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


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d (or FrozenBatchNorm2d) that directly follows a conv into that
    conv's weights and bias (torch.nn.utils.fusion.fuse_conv_bn_eval), the norm replaced by Identity: the
    same function in one op instead of two, so a whole photo's largest activations are made once, not
    twice (peak memory), and faster. "Directly follows": the next element of a Sequential (a ResNet's
    downsample), or `bnN` after `convN` in one module (torchvision's ResNet stem and blocks run them in
    that order). In place, for a model only read with from then on (reading.reader.load_model); returns
    how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.ops import FrozenBatchNorm2d  # a frozen trunk's (model.frozen_stages): the same fields

    if model.training:
        raise ValueError("fold_batchnorm: the model must be in eval mode (its norms' running statistics)")
    folded = 0
    for parent in list(model.modules()):
        children = dict(parent.named_children())
        for name, bn in children.items():
            if not isinstance(bn, (nn.BatchNorm2d, FrozenBatchNorm2d)):
                continue
            if isinstance(parent, nn.Sequential) and name.isdigit():
                conv_name = str(int(name) - 1)
            elif name.startswith("bn"):
                conv_name = "conv" + name[2:]
            else:
                continue
            conv = children.get(conv_name)
            if isinstance(conv, nn.Conv2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, name, nn.Identity())
                folded += 1
    return folded
