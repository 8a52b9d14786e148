"""A fingerprint of what the simulator does, not of how its source is written.

Caches derived from the simulator (pose graphs, per-pose features) are keyed by it. It hashes the
generated scenes, a few rendered frames with their visibility, and the movement table of a small
scene, so that a refactor that changes no behaviour keeps every cache valid, while a change to
scene generation, rendering, the visibility rule or collisions gives new keys.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

__all__ = ["behaviour_fingerprint"]

_VERSION = b"thorgym-sim-behaviour-v1"
_SCENES = ("FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401")


def _spec_bytes(spec: object) -> bytes:
    fields = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else vars(spec)
    return repr(sorted(fields.items(), key=lambda kv: kv[0])).encode()


@functools.lru_cache(maxsize=1)
def behaviour_fingerprint() -> str:
    """16 hex digits; computed once per process (about a second)."""
    import torch

    from .batch import BatchedSimulator, get_scene
    from .poses import move_table

    h = hashlib.sha256(_VERSION)
    for base in (0, 200, 300, 400):  # three generated scenes per room type
        for k in (1, 14, 27):
            h.update(_spec_bytes(get_scene(f"FloorPlan{base + k}")))
    sim = BatchedSimulator(list(_SCENES), width=64, height=64, rotate_step_degrees=45.0)
    with torch.no_grad():
        for yaw, horizon in ((0.0, 0.0), (135.0, 30.0), (270.0, -30.0)):
            poses = sim.agent_poses()
            sim.teleport(range(len(_SCENES)), poses[:, 0], poses[:, 1], [yaw] * 4, [horizon] * 4)
            out = sim.observe()
            for t in (out.rgb, out.depth, out.instance, out.visible):
                h.update(t.cpu().numpy().tobytes())
    positions, moves = move_table("FloorPlan401")
    h.update(np.ascontiguousarray(positions, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(moves, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]
