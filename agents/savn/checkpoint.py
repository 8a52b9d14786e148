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
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise ValueError(
            f"checkpoint {path} could not be read ({type(e).__name__}: {e}); it is corrupt or not "
            "a SAVN checkpoint written by `thorgym train objectnav --agent savn|nonadaptive`"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path} is not a SAVN checkpoint (expected format {CKPT_FORMAT!r})")
    return ckpt
