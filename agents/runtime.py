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

__all__ = ["DistInfo", "all_reduce_mean", "init_distributed", "resolve_device", "set_threads"]


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op torch threads (1 by default in every trainer: N processes on N
    cores beat one process fighting for them)."""
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``"auto"``/None → CUDA when available else CPU; a bare ``"cuda"`` under torchrun → this
    process's GPU (``cuda:LOCAL_RANK``)."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
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
