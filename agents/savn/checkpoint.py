"""The SAVN / non-adaptive checkpoint format: what the trainer writes and the policy reads.

A checkpoint is a ``torch.load(weights_only=True)``-readable dict holding the network, the frozen
backbone, the optimiser, step counters, RNG states and the run arguments (``meta_json``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

CKPT_FORMAT = "thorgym.savn/1"
EXT = ".pt"

__all__ = ["CKPT_FORMAT", "EXT", "load_savn_checkpoint"]


def load_savn_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a SAVN checkpoint (weights-only load) with clear errors for foreign or corrupt files."""
    from thorgym.rundir import load_torch_checkpoint

    hint = "pass one written by `thorgym train objectnav --agent savn|nonadaptive`"
    return load_torch_checkpoint(path, CKPT_FORMAT, "SAVN", hint, map_location=device)
