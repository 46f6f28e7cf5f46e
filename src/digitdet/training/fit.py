"""fit(cfg): the training loop. Owns all state: optimizer, schedules, early stopping, checkpoints, resume.

Run folder: config.yaml (merged config), metrics.jsonl (one line per epoch, rewritten atomically from the
checkpointed history so a resumed run never repeats an epoch), last.pt (every epoch), best.pt (best
validation mAP, with the tuned reading threshold), curve.png.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitdet import io
from digitdet.config import Config
from digitdet.data.loaders import make_dataset, train_loader
from digitdet.errors import ConfigError, DigitdetError, first_line
from digitdet.model.build import build_model, with_lookalike_rows
from digitdet.model.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from digitdet.model.packed import load_model_weights
from digitdet.reading import numbers
from digitdet.training import distributed
from digitdet.training.budget import StepBudget
from digitdet.training.engine import train_one_epoch
from digitdet.training.evaluate import evaluate_split, truth_numbers


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only; norms and biases (1-D tensors) get none."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.train.weight_decay)
    if cfg.train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.train.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=cfg.train.lr)



class LrSchedule:
    """Per-step learning rate: linear warm-up, then either a cosine down to 1 % of train.lr over the
    budget's steps, or a constant that ReduceLROnPlateau lowers between epochs (`scale`, the product of
    its cuts; warm-up never counts as a cut). It follows steps only, never the clock."""

    def __init__(self, cfg: Config, budget: StepBudget):
        self.cfg, self.budget = cfg, budget
        self.scale = 1.0  # plateau reductions so far (product of factors)

    def progress(self, step: int) -> float:
        return min(step / self.budget.total, 1.0)

    def lr(self, step: int) -> float:
        t = self.cfg.train
        warm = min(1.0, (step + 1) / t.warmup_iters) if t.warmup_iters > 0 else 1.0
        if t.scheduler == "cosine":
            return t.lr * warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * self.progress(step))))
        return t.lr * warm * self.scale


def fit(cfg: Config, data_dir: str | Path, out_dir: str | Path, *, resume: bool = False,
        progress: bool = True) -> dict:
    """Train `cfg` on DATA/train, validate on DATA/valid each epoch; returns the final summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = cfg.train
    rank, world, device = distributed.init()
    torch.set_num_threads(t.threads or max(1, (os.cpu_count() or 1) // world))
    # Pretrained weights drive some activations and gradients into subnormal floats, which the CPU
    # handles in microcode: training from the reader's trunk ran 16 % slower until they were flushed.
    torch.set_flush_denormal(True)
    seed_everything(t.seed)

    if cfg.model.frozen_stages and not cfg.model.backbone_weights and not t.init_weights and not resume:
        raise ConfigError(f"model.frozen_stages={cfg.model.frozen_stages} would keep a random trunk as it is: "
                          "give model.backbone_weights, or set model.frozen_stages=0 to train from scratch")
    train_ds = make_dataset(data_dir, "train", cfg, train=True, limit=t.limit)
    model = build_model(cfg).to(device)
    optimizer = make_optimizer(model, cfg)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=t.plateau_factor, patience=t.plateau_patience
    )
    scaler = torch.amp.GradScaler("cuda") if (t.amp and device.type == "cuda") else None
    steps_per_epoch = max(1, len(train_ds) // (t.batch_size * world))
    budget = StepBudget(cap=steps_per_epoch * t.epochs, images_per_step=t.batch_size * world,
                        max_images=t.max_images, max_minutes=t.max_minutes)
    sched = LrSchedule(cfg, budget)

    start_epoch, step, best, stale, history = 0, 0, -1.0, 0, []
    if resume and (out / "last.pt").is_file():
        ckpt = load_checkpoint(out / "last.pt")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        plateau.load_state_dict(ckpt["plateau"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, step, best, stale = ckpt["epoch"] + 1, ckpt["step"], ckpt["best"], ckpt["stale"]
        sched.scale, history = ckpt["lr_scale"], ckpt["history"]
        # A minutes budget was turned into steps by timing, before the interruption: keep that count. An
        # image budget is the config's own, so a resumed run may lengthen or shorten it (the cosine follows).
        if ckpt.get("budget_steps") is not None and not t.max_images:
            budget.steps = ckpt["budget_steps"]
    elif resume:
        raise DigitdetError(f"{out / 'last.pt'}: nothing to resume")
    elif t.init_weights:
        try:
            model.load_state_dict(with_lookalike_rows(load_model_weights(t.init_weights), model))
        except RuntimeError as exc:
            raise ConfigError(f"train.init_weights={t.init_weights}: its weights do not fit this model's "
                              f"config ({first_line(exc)})") from None
    if distributed.is_main():
        io.write_text(out / "config.yaml", cfg.to_yaml())
        if not resume:
            (out / "metrics.jsonl").unlink(missing_ok=True)
    net = distributed.wrap(model)  # the DDP wrapper trains; `model` is what we evaluate and save

    def set_lr(s: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = sched.lr(s)

    train_seconds = history[-1]["train_seconds"] if history else 0.0
    epoch = start_epoch - 1
    for epoch in range(start_epoch, t.epochs):
        if budget.reached(step):
            break
        loader = train_loader(train_ds, cfg, epoch, sampler=distributed.sampler(train_ds, t.seed, epoch))
        stats = train_one_epoch(
            net, loader, optimizer, device, epoch=epoch, start_step=step,
            set_lr=set_lr, scaler=scaler, clip_grad_norm=t.clip_grad_norm,
            after_step=budget.after_step,
            progress=progress and distributed.is_main(),
        )
        step += stats["steps"]
        train_seconds += stats["seconds"]
        val = None
        if distributed.is_main():
            val, _, _ = evaluate_split(model, data_dir, "valid", cfg, device, limit=t.val_limit,
                                       progress=progress)
        val = distributed.broadcast(val)
        val_map = val["coco"]["AP"] if val["coco"]["AP"] is not None else 0.0
        if cfg.train.scheduler == "plateau":
            # The plateau scheduler cuts whatever lr the groups hold; give it the lr without warm-up, else
            # a warm-up factor still in force would be read back as a cut and kept for good.
            for group in optimizer.param_groups:
                group["lr"] = t.lr * sched.scale
            plateau.step(val_map)
            sched.scale = optimizer.param_groups[0]["lr"] / t.lr  # the plateau's cuts, applied per step
        record = {
            "epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
            "train": {k: round(v, 5) for k, v in stats.items()},
            "val": val["coco"], "val_number_accuracy": val["number_accuracy"],
            "seconds": round(stats["seconds"], 2), "train_seconds": round(train_seconds, 2),
            **budget.record(),
        }
        history.append(record)
        improved = val_map > best
        best, stale = (val_map, 0) if improved else (best, stale + 1)
        state = {
            "config": cfg.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "plateau": plateau.state_dict(), "scaler": scaler.state_dict() if scaler else None,
            "epoch": epoch, "step": step, "best": best, "stale": stale, "lr_scale": sched.scale,
            "train_seconds": train_seconds, "history": history, "rng": rng_state(),
            "budget_steps": budget.steps,
            "val": val["coco"], "read_thresh": None,
        }
        if distributed.is_main():
            # Rewritten whole from the history that last.pt also holds: a kill between the two cannot
            # leave an epoch that --resume then runs and logs again, nor a torn line.
            io.write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
            if improved:
                save_checkpoint(out / "best.pt", state)
            save_checkpoint(out / "last.pt", state)
            _plot(out, history)
        distributed.barrier()
        if progress and distributed.is_main():
            print(f"epoch {epoch}: loss {stats['loss']:.3f}  val mAP {val_map:.3f}  "
                  f"number acc {val['number_accuracy']:.3f}  {stats['images_per_s']:.1f} img/s")
        if t.early_stop_patience and stale >= t.early_stop_patience:
            break
        if budget.reached(step):
            break
    summary = {"epochs": epoch + 1, "best_val_mAP": best, "train_seconds": train_seconds, "steps": step,
               "train_images": sum(h["train"]["images"] for h in history) * world,
               "train_images_per_s": _images_per_s(history) * world, **budget.record()}
    if not distributed.is_main():
        distributed.barrier()
        return summary
    summary = finish(cfg, data_dir, out, device, progress=progress, summary=summary)
    distributed.barrier()
    return summary


def _images_per_s(history: list[dict]) -> float:
    images = sum(h["train"]["images"] for h in history)
    seconds = sum(h["train"]["seconds"] for h in history)
    return images / seconds if seconds else 0.0


def finish(cfg: Config, data_dir, out: Path, device, *, progress: bool, summary: dict) -> dict:
    """Tune the reading threshold of best.pt on the whole validation split and store it there."""
    if not (out / "best.pt").is_file():
        raise DigitdetError(f"{out}: training produced no checkpoint (no epoch finished)")
    _, model, ckpt = model_from_checkpoint(out / "best.pt", device=device)
    val, dets, coco = evaluate_split(model, data_dir, "valid", cfg, device, progress=progress)
    thresh, acc = numbers.tune_read_threshold(dets, truth_numbers(coco), cfg.predict.dedup_iou)
    ckpt["read_thresh"] = thresh
    ckpt["val"] = val["coco"]
    ckpt["val_number_accuracy"] = acc
    save_checkpoint(out / "best.pt", ckpt)
    summary.update(val=val["coco"], val_number_accuracy=acc, read_thresh=thresh)
    io.write_json(out / "train_summary.json", summary)
    return summary


def _plot(out: Path, history: list[dict]) -> None:
    from digitdet.viz import plot_curve

    plot_curve(history, out / "curve.png")
