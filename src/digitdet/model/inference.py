"""Batched inference, stateless: detections per image for a loader (what validation, predict, errors and
the studies share), and the autocast rule training uses too."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair  # int or pair -> pair, as torch's own convs and pools read them
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


class BandedStem(nn.Module):
    """A ResNet stem, conv1 -> ReLU -> max pool, computed in bands of output rows: the same numbers without
    ever holding the conv's full output. That output is the largest activation of the whole model (64
    channels at half the view's size: 52 MB for a 1024x834 view, 256 MB at 4 MP) and oneDNN's conv holds a
    second copy of it while it runs, so a big view's peak memory is the stem's; in bands of `band_rows`
    pooled rows it is a few MB. Each band's conv reads the input rows its outputs need (zero rows past the
    edges, as the conv's padding), and its pool the conv rows its outputs need (-inf past the edges, as the
    pool's padding), so every output is computed from the same values as in one pass. Views up to
    `band_rows` pooled rows run in one pass."""

    def __init__(self, conv: nn.Conv2d, pool: nn.MaxPool2d, band_rows: int = 32) -> None:
        super().__init__()
        if (conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros" or pool.ceil_mode
                or pool.dilation not in (1, (1, 1))):
            raise ValueError("BandedStem: a plain conv (no dilation, groups or non-zero padding) and a floor pool")
        self.conv, self.pool, self.band_rows = conv, pool, int(band_rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, pool = self.conv, self.pool
        # (kernel, stride, padding) along the rows; the columns keep the conv's and pool's own padding
        ck, cs, cp = (_pair(v)[0] for v in (conv.kernel_size, conv.stride, conv.padding))
        pk, ps, pp = (_pair(v)[0] for v in (pool.kernel_size, pool.stride, pool.padding))
        height = x.shape[-2]
        conv_rows = (height + 2 * cp - ck) // cs + 1
        pooled_rows = (conv_rows + 2 * pp - pk) // ps + 1
        if pooled_rows <= self.band_rows:
            return pool(F.relu(conv(x)))
        bands = []
        for p0 in range(0, pooled_rows, self.band_rows):
            p1 = min(pooled_rows, p0 + self.band_rows)
            c0, c1 = p0 * ps - pp, (p1 - 1) * ps - pp + pk  # the conv rows these pooled rows read
            c0_in, c1_in = max(c0, 0), min(c1, conv_rows)
            i0, i1 = c0_in * cs - cp, (c1_in - 1) * cs - cp + ck  # the input rows those conv rows read
            band = F.pad(x[..., max(i0, 0):min(i1, height), :], (0, 0, max(-i0, 0), max(i1 - height, 0)))
            y = F.relu(F.conv2d(band, conv.weight, conv.bias, conv.stride, (0, _pair(conv.padding)[1])))
            y = F.pad(y, (0, 0, c0_in - c0, c1 - c1_in), value=float("-inf"))
            bands.append(F.max_pool2d(y, pool.kernel_size, pool.stride, (0, _pair(pool.padding)[1])))
        return torch.cat(bands, dim=-2)


def band_stem(model: nn.Module, band_rows: int = 32) -> bool:
    """Run a folded ResNet trunk's stem (conv1 -> Identity -> ReLU -> max pool, after fold_batchnorm) as a
    BandedStem, in place, for a model only read with from then on (reading.reader.load_model); False when the
    model has no such stem."""
    body = getattr(getattr(model, "backbone", None), "body", None)
    parts = [getattr(body, n, None) for n in ("conv1", "bn1", "relu", "maxpool")]
    if not (isinstance(parts[0], nn.Conv2d) and isinstance(parts[1], nn.Identity)
            and isinstance(parts[2], nn.ReLU) and isinstance(parts[3], nn.MaxPool2d)):
        return False
    body.conv1 = BandedStem(parts[0], parts[3], band_rows)
    body.relu, body.maxpool = nn.Identity(), nn.Identity()
    return True


def prepare_for_reading(model: nn.Module) -> nn.Module:
    """A model loaded only to read with (reading.reader.load_model), in place: its norms folded into its
    convs (fold_batchnorm), its stem run in bands of rows (band_stem) and its weights channels-last, so
    that every conv's output is channels-last too: oneDNN's native layout, without the copies into and out
    of its blocked layout that a plain-layout conv makes (on 2 Xeon cores, 2026-12-05: 15-20 % less time a
    photo on real_plaques, real_signs and sign photos, the same readings on 940 synthetic photos; with the
    banded stem, peak RSS over real_plaques 0.87 -> 0.83 GB)."""
    fold_batchnorm(model)
    band_stem(model)
    return model.to(memory_format=torch.channels_last)
