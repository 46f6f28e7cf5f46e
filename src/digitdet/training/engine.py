"""Stateless steps: one training epoch. The training loop (training.fit) owns state; batched inference is
model.inference."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from digitdet.errors import TrainingError
from digitdet.model.inference import autocast


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    epoch: int,
    start_step: int,
    set_lr: Callable[[int], None] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float = 0.0,
    after_step: Callable[[int], bool] | None = None,
    progress: bool = True,
) -> dict:
    """Train over `loader` once; returns mean losses, steps, images and seconds.

    `set_lr(step)` is called before every optimizer step (warm-up / cosine); `after_step(steps done)`
    after it, and the epoch ends early when it returns True (a training budget in steps).
    Raises TrainingError naming the step when the loss stops being finite.
    """
    model.train()
    sums: dict[str, float] = {}
    steps = images = 0
    step = start_step
    t0 = time.perf_counter()
    use_amp = scaler is not None and device.type == "cuda"
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, unit="batch")
    for imgs, targets in bar:
        if set_lr is not None:
            set_lr(step)
        imgs = [im.to(device, non_blocking=True) for im in imgs]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        with autocast(device, use_amp):
            losses = model(imgs, targets)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            detail = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise TrainingError(f"non-finite loss at epoch {epoch} step {step} ({detail}); lower train.lr")
        optimizer.zero_grad(set_to_none=True)
        if use_amp:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        if use_amp:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v.item()
        sums["loss"] = sums.get("loss", 0.0) + loss.item()
        steps += 1
        step += 1
        images += len(imgs)
        bar.set_postfix(loss=f"{sums['loss'] / steps:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        if after_step is not None and after_step(step):
            break
    seconds = time.perf_counter() - t0
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    out.update(steps=steps, images=images, seconds=seconds, images_per_s=images / max(seconds, 1e-9))
    return out
