"""Datasets and DataLoaders from a config: the one place the data pipeline is wired together."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from digitdet.config import Config
from digitdet.data.coco import DigitDataset, collate_detection, split_paths
from digitdet.data.transforms import build_transforms
from digitdet.errors import DataError


def make_dataset(
    data_dir: str | Path, split: str, cfg: Config, *, train: bool, limit: int | None = None
) -> DigitDataset | Subset:
    """The split's images (+ annotations when its json exists) through the config's transforms."""
    image_dir, ann_file = split_paths(data_dir, split)
    if train and ann_file is None:
        raise DataError(f"{Path(data_dir) / (split + '.json')}: annotations needed to train on '{split}'")
    ds = DigitDataset(image_dir, ann_file, transforms=build_transforms(cfg.data, train=train),
                      lookalikes=train and cfg.model.lookalike_class)
    if limit is not None and limit < len(ds):
        return Subset(ds, range(limit))
    return ds


def base_dataset(ds: Dataset) -> DigitDataset:
    while isinstance(ds, Subset):
        ds = ds.dataset
    return ds


def _indices(ds: Dataset) -> list[int]:
    """Indices of `ds`'s items in its base dataset."""
    if isinstance(ds, Subset):
        inner = _indices(ds.dataset)
        return [inner[i] for i in ds.indices]
    return list(range(len(ds)))


class WithScale(Dataset):
    """Adds target['scale'] = (sx, sy): tensor size over original size (the dataset's `sizes`), so boxes can
    be mapped back through any upsampling or downscaling on load."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.base = base_dataset(ds)
        self.index = _indices(ds)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        image, target = self.ds[i]
        if image is None:  # an ImageFolder file that failed to decode: passed on for SkipFailed
            return image, target
        w, h = self.base.sizes[self.index[i]]
        target = dict(target, scale=(image.shape[-1] / w, image.shape[-2] / h))
        return image, target


def size_grouped_batches(ds: Dataset, batch_size: int) -> list[list[int]]:
    """Batches of similar-sized images (less padding per batch), in a deterministic order."""
    base, index = base_dataset(ds), _indices(ds)
    order = sorted(range(len(ds)), key=lambda i: (base.sizes[index[i]][1], base.sizes[index[i]][0], i))
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


def default_workers(requested: int) -> int:
    return max(0, min(requested, os.cpu_count() or 1))


def inference_loader(ds: Dataset, batch_size: int, workers: int) -> DataLoader:
    wrapped = WithScale(ds)
    return DataLoader(
        wrapped,
        batch_sampler=size_grouped_batches(ds, batch_size),
        num_workers=default_workers(workers),
        collate_fn=collate_detection,
        persistent_workers=False,
    )


class SkipFailed:
    """An inference loader without the items whose image could not be read (ImageFolder gives them as
    (None, {'image_id', 'error'})): each is reported once through `on_skip(target)`, batches that lose
    every image are left out, and len() stays the loader's (for progress bars)."""

    def __init__(self, loader: Iterable, on_skip: Callable[[dict], None]) -> None:
        self.loader, self.on_skip = loader, on_skip

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[list, list]]:
        for images, targets in self.loader:
            keep = [k for k, image in enumerate(images) if image is not None]
            for k in sorted(set(range(len(images))) - set(keep)):
                self.on_skip(targets[k])
            if keep:
                yield [images[k] for k in keep], [targets[k] for k in keep]


def train_loader(ds: Dataset, cfg: Config, epoch: int, sampler=None) -> DataLoader:
    """A shuffled loader whose order and augmentation depend only on (seed, epoch): exact resume."""
    gen = torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)
    return DataLoader(
        ds,
        batch_size=cfg.train.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=gen,
        num_workers=default_workers(cfg.data.workers),
        collate_fn=collate_detection,
        drop_last=len(ds) > cfg.train.batch_size,
    )
