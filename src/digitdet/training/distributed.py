"""Multi-process training under torchrun: DistributedDataParallel + DistributedSampler, rank 0 writes.

Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op, so single-process code paths
stay the same.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def init() -> tuple[int, int, torch.device]:
    """(rank, world_size, device). Starts the process group once when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    if not dist.is_initialized():
        return model
    device_ids = [torch.cuda.current_device()] if torch.cuda.is_available() else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def sampler(dataset, seed: int, epoch: int):
    """A DistributedSampler set to `epoch`, or None when running in one process."""
    if not dist.is_initialized():
        return None
    s = torch.utils.data.distributed.DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)
    s.set_epoch(epoch)
    return s


def broadcast(value):
    """Rank 0's value on every rank (keeps schedules and early stopping in step)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
