"""The one place that turns a device name into a ``torch.device`` and sets torch's threads.

Used by the simulator, the inference engine, the run directory and every trainer. Importing it
imports neither torch nor NumPy (torch is imported when a function runs).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "set_threads"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cpu``; ``cuda`` or ``cuda:k`` (checked to exist)."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but CUDA is not available here; "
                "use --device cpu (or auto)"
            )
        dev = torch.device(device)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here; "
                "use cuda:0 .. cuda:N-1"
            )
        return dev
    raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:K")


def set_threads(n: int = 1) -> None:
    """Torch intra-op and inter-op threads of this process (1 per process by default, so that
    parallel runs on a shared machine do not oversubscribe the cores)."""
    import torch

    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass  # only settable before the first parallel work; intra-op threads are the ones that count
