"""Checkpoints: one dict with the merged config, weights, optimizer/scheduler state and RNG states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from digitdet import io
from digitdet.config import Config, load_config
from digitdet.errors import ConfigError, DigitdetError, first_line


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    io.save_torch(path, state)  # atomic: a killed run never leaves a half-written checkpoint


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DigitdetError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise DigitdetError(f"{path}: not a readable checkpoint ({first_line(exc, typed=True)})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise DigitdetError(f"{path}: not a digitdet checkpoint (missing 'model' or 'config')")
    return ckpt


def config_from_checkpoint(ckpt: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    # Overrides at prediction time (e.g. predict.nms_thresh=0.3) go on top of the trained config.
    return load_config([], overrides, base=ckpt["config"])


def model_from_checkpoint(path: str | Path, overrides=(), device: str | torch.device = "cpu"):
    """(cfg, model in eval mode, checkpoint dict). The tuned reading threshold is applied to cfg."""
    ckpt = load_checkpoint(path)
    cfg, model = model_from_state(ckpt, overrides, device, where=str(path))
    return cfg, model, ckpt


def model_from_state(state: dict[str, Any], overrides=(), device: str | torch.device = "cpu", *, where: str):
    """(cfg, model in eval mode) from a dict with 'config', 'model' (weights, any float dtype) and an
    optional 'read_thresh' (a training checkpoint or a packed reader); `where` names it in errors."""
    from dataclasses import replace

    from digitdet.model.build import build_model

    cfg = config_from_checkpoint(state, overrides)
    if state.get("read_thresh") is not None and not any(o.startswith("predict.read_thresh") for o in overrides):
        cfg = replace(cfg, predict=replace(cfg.predict, read_thresh=float(state["read_thresh"])))
    # Never load user-supplied backbone weights again: the checkpoint already holds every weight.
    cfg = replace(cfg, model=replace(cfg.model, backbone_weights=None))
    model = build_model(cfg, initialise=False)  # every weight comes from the state, strictly
    try:
        model.load_state_dict(state["model"])  # copies into the float32 parameters (float16 storage too)
    except RuntimeError as exc:
        raise ConfigError(f"{where}: weights do not fit the configured model ({first_line(exc)})") from None
    return cfg, model.to(device).eval()
