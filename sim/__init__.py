"""thorgym.sim: the built-in AI2-THOR-compatible simulator.

- :class:`Controller` mirrors ``ai2thor.controller.Controller`` (one world, AI2-THOR metadata).
- :class:`BatchedSimulator` steps and renders N worlds per call and returns tensors.
- :mod:`thorgym.sim.scenes` names the 120 iTHOR scenes and their train/val/test split.

Attributes are imported lazily so ``thorgym.sim.scenes`` stays cheap (no torch import).
"""

from __future__ import annotations

from typing import Any

from .scenes import ROOM_TYPES, SPLITS, all_scenes, parse_scene, room_type, scenes_for, split_of

_LAZY = {
    "Controller": ".controller",
    "Event": ".controller",
    "BatchedSimulator": ".batch",
    "BatchStep": ".batch",
    "NAV_ACTIONS": ".batch",
    "get_scene": ".batch",
}

__all__ = [
    "ROOM_TYPES",
    "SPLITS",
    "all_scenes",
    "parse_scene",
    "room_type",
    "scenes_for",
    "split_of",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'thorgym.sim' has no attribute {name!r}")
