"""`digitdet pretrain`: digitdet's own ImageNet. The detector's trunk is trained as an 11-way glyph
classifier (digits 0..9 and "no digit") on crops cut from the synthetic generator at the scale the
detector sees digits (data/synth/glyph_crops.py), then saved as a trunk state dict that
`model.backbone_weights` loads.

Output file (torch.save, loads with weights_only=True): {"format": TRUNK_FORMAT, "backbone", "norm",
"layers" (the deepest ResNet stage kept), "state_dict" (torchvision ResNet names, float16), "meta"
(seed, images, crops, held-out accuracy, command settings)}. OUT.ckpt holds the resumable state while
training and is removed at the end.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from digitdet import io
from digitdet.config import ModelConfig
from digitdet.errors import DigitdetError

TRUNK_FORMAT = "digitdet-trunk/1"
NUM_CLASSES = 11  # digits 0..9 + no digit


@dataclass(frozen=True)
class PretrainSettings:
    backbone: str = "resnet18"
    norm: str = "batchnorm"
    layers: int = 3  # ResNet stages kept (3: conv1..layer3, strides up to 16)
    images: int = 20000  # synthetic images rendered; each gives ~4 crops
    holdout: int = 1000  # further images whose crops measure held-out accuracy
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    short_side: int = 80  # the detector's test-time short side (configs/cpu.yaml min_size)
    crop: int = 48
    seed: int = 0


class GlyphClassifier(nn.Module):
    """ResNet stem + layer1..layerK of a digitdet trunk, global average pooling, one linear layer."""

    def __init__(self, backbone: str, norm: str, layers: int):
        super().__init__()
        from digitdet.model.build import make_trunk

        trunk = make_trunk(backbone, norm)
        self.trunk = trunk
        self.layers = layers
        width = trunk.inplanes // 8 * 2 ** (layers - 1)  # channels out of layer K
        self.head = nn.Linear(width, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        for k in range(1, self.layers + 1):
            x = getattr(t, f"layer{k}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))

    def trunk_state(self) -> dict[str, torch.Tensor]:
        keep = ("conv1.", "bn1.", *(f"layer{k}." for k in range(1, self.layers + 1)))
        return {k: v for k, v in self.trunk.state_dict().items() if k.startswith(keep)}


# The detector's normalization (GeneralizedRCNNTransform with the config's defaults), so the trunk sees
# the same input statistics in both.
_MEAN = torch.tensor(ModelConfig().image_mean).view(1, 3, 1, 1)
_STD = torch.tensor(ModelConfig().image_std).view(1, 3, 1, 1)


def to_batch(crops: np.ndarray, gen: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalized float (N, 3, H, W); with `gen`, light photometric jitter
    (per-crop brightness/contrast, sometimes grey) drawn from it."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255)
    if gen is not None:
        n = x.shape[0]
        gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.6
        bias = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * gain + mean + bias).clamp_(0, 1)
        grey = torch.rand(n, generator=gen) < 0.2
        x[grey] = x[grey].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return (x - _MEAN) / _STD


def _crops(s: PretrainSettings, first: int, count: int, desc: str, progress: bool):
    from tqdm import tqdm

    from digitdet.data.synth.glyph_crops import make_crops

    with tqdm(total=count, unit="img", desc=desc, disable=not progress) as bar:
        return make_crops(s.seed, first, count, short_side=s.short_side, size=s.crop,
                          workers=os.cpu_count() or 1, progress=bar.update)


@torch.inference_mode()
def accuracy(model: GlyphClassifier, crops: np.ndarray, labels: np.ndarray, batch: int = 512) -> float:
    model.eval()
    right = 0
    for k in range(0, len(crops), batch):
        pred = model(to_batch(crops[k:k + batch])).argmax(1).numpy()
        right += int((pred == labels[k:k + batch]).sum())
    return right / max(len(crops), 1)


def pretrain(out: str | Path, settings: PretrainSettings = PretrainSettings(), *, resume: bool = False,
             progress: bool = True) -> dict:
    """Train the glyph classifier and write the trunk to `out`; returns the summary (also in its meta)."""
    from tqdm import tqdm

    out, s = Path(out), settings
    state_path = out.with_name(out.name + ".ckpt")
    if s.images < 1 or s.epochs < 1 or s.layers not in (1, 2, 3, 4):
        raise DigitdetError(f"pretrain: bad settings (images {s.images}, epochs {s.epochs}, layers {s.layers})")
    torch.manual_seed(s.seed)
    model = GlyphClassifier(s.backbone, s.norm, s.layers)
    t0 = time.perf_counter()
    x_train, y_train = _crops(s, 1, s.images, "crops", progress)
    x_hold, y_hold = _crops(s, s.images + 1, s.holdout, "held-out crops", progress)
    crop_s = time.perf_counter() - t0
    steps_per_epoch = max(1, len(x_train) // s.batch_size)
    total = steps_per_epoch * s.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    start_epoch, history, train_s = 0, [], 0.0
    if resume:
        if not state_path.is_file():
            raise DigitdetError(f"{state_path}: nothing to resume")
        ckpt = torch.load(state_path, map_location="cpu", weights_only=True)
        if ckpt["settings"] != asdict(s):
            raise DigitdetError(f"{state_path}: was started with other settings ({ckpt['settings']})")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, history, train_s = ckpt["epoch"] + 1, ckpt["history"], ckpt["train_seconds"]
    for epoch in range(start_epoch, s.epochs):
        gen = torch.Generator().manual_seed(s.seed * 1000 + epoch)  # order and jitter: (seed, epoch) only
        order = torch.randperm(len(x_train), generator=gen).numpy()
        model.train()
        t_epoch, loss_sum = time.perf_counter(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"pretrain epoch {epoch}", leave=False, disable=not progress)
        for k in bar:
            step = epoch * steps_per_epoch + k
            lr = s.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[k * s.batch_size:(k + 1) * s.batch_size]
            loss = F.cross_entropy(model(to_batch(x_train[idx], gen)), torch.from_numpy(y_train[idx]),
                                   label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            bar.set_postfix(loss=f"{loss_sum / (k + 1):.3f}")
        train_s += time.perf_counter() - t_epoch
        acc = accuracy(model, x_hold, y_hold)
        history.append({"epoch": epoch, "loss": round(loss_sum / steps_per_epoch, 4), "heldout_acc": round(acc, 4),
                        "train_seconds": round(train_s, 1)})
        if progress:
            print(f"pretrain epoch {epoch}: loss {loss_sum / steps_per_epoch:.3f}  held-out accuracy {acc:.3f}")
        io.save_torch(state_path, {"settings": asdict(s), "model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "epoch": epoch, "history": history, "train_seconds": train_s})
    summary = {"crops": int(len(x_train)), "heldout_crops": int(len(x_hold)),
               "no_digit_fraction": round(float((y_train == 10).mean()), 3),
               "heldout_acc": history[-1]["heldout_acc"], "history": history, "crop_seconds": round(crop_s, 1),
               "train_seconds": round(train_s, 1),
               "crops_per_s": round(len(x_train) * s.epochs / max(train_s, 1e-9), 1),
               "settings": asdict(s), "torch": str(torch.__version__)}
    trunk = {k: v.detach().to(torch.float16) for k, v in model.trunk_state().items()}
    io.save_torch(out, {"format": TRUNK_FORMAT, "backbone": s.backbone, "norm": s.norm, "layers": s.layers,
                        "state_dict": trunk, "meta": summary})
    state_path.unlink(missing_ok=True)
    return summary
