"""Process set-up for trainers: torch threads, device choice and torch.distributed (torchrun).

Under ``torchrun --nproc-per-node N`` the environment carries RANK / WORLD_SIZE /
MASTER_ADDR; :func:`init_distributed` joins the process group once (gloo on CPU, nccl on CUDA)
and every helper here works unchanged in a plain single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from thorgym.rundir import resolve_device as _resolve_device
from thorgym.rundir import set_threads

__all__ = ["DistInfo", "all_reduce_mean", "init_distributed", "resolve_device", "set_threads"]


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """:func:`thorgym.rundir.resolve_device`, and under torchrun a bare ``"cuda"`` becomes this
    process's GPU (``cuda:LOCAL_RANK``)."""
    dev = _resolve_device("auto" if device is None else device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    return dev


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = "cpu") -> DistInfo:
    """Join the torchrun process group if launched by torchrun (WORLD_SIZE > 1), else rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device in (None, "auto"):
            use_cuda = torch.cuda.is_available()
        else:
            use_cuda = str(device).startswith("cuda")
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local)


def all_reduce_mean(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Average ``tensors`` in place across processes (one flat buffer, one collective)."""
    if not info.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= info.world
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n
