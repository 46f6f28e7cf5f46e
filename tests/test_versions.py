"""The installed torch/torchvision (pyproject's floor: torch 2.11 / torchvision 0.26) run every part of
digitdet that depends on their APIs: every module imports, every transform preset builds and runs (the
training one hit `interpolation should be an InterpolationMode` on torchvision 0.26), every shipped config
loads, and the CPU-sized models build and take a training step. Run this file first on a new install."""

import importlib
import pkgutil

import pytest
import torch
from PIL import Image

import digitdet
from digitdet.config import DataConfig, load_config, shipped_configs
from digitdet.data.transforms import build_transforms

BASES = ("cpu", "seed")  # whole configs; every other shipped file is a delta laid over cpu
CPU_SIZED = ("resnet18", "resnet34")  # build_model only for these: a ResNet-101 build is slow and big


def test_versions_meet_the_floor():
    def major_minor(version: str) -> tuple[int, int]:
        major, minor = version.split("+")[0].split(".")[:2]
        return int(major), int(minor)

    import torchvision

    assert major_minor(torch.__version__) >= (2, 11), torch.__version__
    assert major_minor(torchvision.__version__) >= (0, 26), torchvision.__version__


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(digitdet.__path__, "digitdet.")]
    assert {"digitdet.cli", "digitdet.config", "digitdet.data.transforms", "digitdet.reading.predict"} <= set(names)
    for name in names:
        importlib.import_module(name)


def _stack(name: str) -> list[str]:
    return [name] if name in BASES else ["cpu", name]


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_and_its_transforms(name):
    cfg = load_config(_stack(name))
    assert cfg.model.backbone in ("resnet18", "resnet34", "resnet50", "resnet101")
    image = Image.new("RGB", (40, 24), (200, 180, 160))
    boxes = torch.tensor([[4.0, 4.0, 14.0, 20.0], [16.0, 4.0, 26.0, 20.0]])
    for data in (cfg.data, DataConfig(augment=True)):  # the config's and the full augmentation preset
        for train in (False, True):
            torch.manual_seed(0)
            tensor, target = build_transforms(data, train=train)(image, _target(boxes))
            assert tensor.dtype == torch.float32 and tensor.shape[0] == 3
            assert target["boxes"].shape[0] == target["labels"].shape[0] <= 2


def _target(boxes: torch.Tensor) -> dict:
    return {"boxes": boxes.clone(), "labels": torch.tensor([2, 3]), "image_id": 1}


SMALL = ["model.min_size=[64]", "model.max_size=96", "model.rpn_post_nms_top_n_train=32",
         "model.box_batch_size_per_image=16"]


def _distinct_cpu_models() -> list[str]:
    """One shipped config per distinct CPU-sized model section (predict-only deltas share cpu's model)."""
    seen: dict = {}
    for name in shipped_configs():
        model = load_config(_stack(name), SMALL).model
        if model.backbone in CPU_SIZED:
            seen.setdefault(model, name)
    return list(seen.values())


@pytest.mark.parametrize("name", _distinct_cpu_models())
def test_cpu_sized_models_build_and_train_a_step(name):
    cfg = load_config(_stack(name), SMALL)
    from digitdet.model import build_model

    torch.manual_seed(0)
    model = build_model(cfg)
    boxes = torch.tensor([[4.0, 4.0, 16.0, 28.0], [20.0, 4.0, 32.0, 28.0]])
    image, target = build_transforms(DataConfig(augment=True), train=True)(
        Image.new("RGB", (48, 32), (90, 90, 90)), _target(boxes))
    model.train()
    losses = model([image], [target])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        (det,) = model([image])
    assert det["boxes"].shape[-1] == 4
