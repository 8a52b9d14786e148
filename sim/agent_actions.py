"""AI2-THOR actions that need more than one simulator call: GetInteractablePoses, DropHandObject.

Kept apart from :mod:`thorgym.sim.controller` (which dispatches them) so the controller stays
a thin mirror of the client API.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .batch import HORIZON_MAX, HORIZON_MIN, BatchedSimulator
from .layout import AGENT_Y
from .objects import OBJECT_TYPES
from .poses import object_visible_per_pose

__all__ = ["DEFAULT_HORIZONS", "drop_spot", "interactable_poses"]

#: AI2-THOR's default horizons of GetInteractablePoses.
DEFAULT_HORIZONS: tuple[float, ...] = (-30.0, 0.0, 30.0, 60.0)
_HAND_REACH = 0.46  # metres ahead of the agent where the hand holds objects (metadata.py too)
_HAND_HEIGHT = 1.3  # below this a surface catches a dropped object


def _numbers(name: str, values: Any) -> list[float]:
    if not isinstance(values, list | tuple) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ValueError(f"GetInteractablePoses: {name} must be a list of finite numbers, got {values!r}")
    return [float(v) for v in values]


def interactable_poses(
    sim: BatchedSimulator,
    object_id: str,
    agent: int = 0,
    positions: Sequence[dict[str, float]] | None = None,
    rotations: Sequence[float] | None = None,
    horizons: Sequence[float] | None = None,
    standings: Sequence[bool] | None = None,
    max_distance: float | None = None,
    max_poses: int | None = None,
) -> list[dict[str, Any]]:
    """AI2-THOR's GetInteractablePoses: the agent poses from which `object_id` is visible.

    Poses are the agent's reachable positions (or `positions`) times `rotations` (default:
    multiples of rotateStepDegrees) times `horizons` (default -30, 0, 30, 60) times `standings`
    (only standing exists here). Visible means AI2-THOR's rule with ``maxDistance`` in place of
    visibilityDistance (default: the controller's). Each pose is ``{x, y, z, rotation, horizon,
    standing}``, ready for ``TeleportFull(**pose)``; at most `max_poses` are returned.
    Raises ValueError on bad arguments (the caller reports an unknown objectId as a failure).
    """
    world = sim.worlds[0]
    if object_id not in world.index:
        raise KeyError(object_id)
    if standings is not None:
        if not isinstance(standings, list | tuple) or not all(isinstance(s, bool) for s in standings):
            raise ValueError(f"GetInteractablePoses: standings must be a list of booleans, got {standings!r}")
        if False in standings:
            raise ValueError(
                "GetInteractablePoses: standings=[False] (crouching) is not supported by thorgym.sim; "
                "pass standings=[True] or leave it out"
            )
    step = float(sim.rotate_step_degrees)
    rots = (
        [k * step for k in range(max(1, round(360.0 / step)))]
        if rotations is None
        else [r % 360.0 for r in _numbers("rotations", rotations)]
    )
    hors = list(DEFAULT_HORIZONS) if horizons is None else _numbers("horizons", horizons)
    for h in hors:
        if not HORIZON_MIN <= h <= HORIZON_MAX:
            raise ValueError(
                f"GetInteractablePoses: horizon {h:g} is outside [{HORIZON_MIN:g}, {HORIZON_MAX:g}]"
            )
    if max_distance is not None and not (max_distance > 0 and math.isfinite(max_distance)):
        raise ValueError(f"GetInteractablePoses: maxDistance must be positive, got {max_distance!r}")
    if max_poses is not None and (isinstance(max_poses, bool) or max_poses <= 0):
        raise ValueError(f"GetInteractablePoses: maxPoses must be a positive integer, got {max_poses!r}")
    if positions is None:
        xz = sim.reachable_positions(0, agent)
    else:
        if not isinstance(positions, list | tuple) or not all(
            isinstance(p, dict) and {"x", "z"} <= set(p) for p in positions
        ):
            raise ValueError("GetInteractablePoses: positions must be a list of {x, y, z} dicts")
        xz = [(float(p["x"]), float(p["z"])) for p in positions]
    if not xz or not rots or not hors:
        return []
    grid = np.array([(x, z, r, h) for x, z in xz for r in rots for h in hors], dtype=np.float64)
    seen = object_visible_per_pose(
        world,
        grid[:, :2],
        grid[:, 2],
        grid[:, 3],
        object_id,
        field_of_view=sim.field_of_view,
        visibility_distance=sim.visibility_distance if max_distance is None else float(max_distance),
        aspect=sim.width / sim.height,
    )
    out = [
        {
            "x": float(x),
            "y": AGENT_Y,
            "z": float(z),
            "rotation": float(r),
            "horizon": float(h),
            "standing": True,
        }
        for (x, z, r, h) in grid[seen]
    ]
    return out if max_poses is None else out[:max_poses]


def drop_spot(
    sim: BatchedSimulator, agent: int, hand: Sequence[float] | None = None
) -> tuple[np.ndarray, str | None] | None:
    """Where what `agent` holds lands when let go (AI2-THOR's DropHandObject, without physics).

    It falls straight down from the hand (world x, z of `hand`; default: half a metre ahead
    of the agent) onto the highest receptacle top below the hand there, else onto the floor;
    when something is in the way there, the floor a little farther ahead or to either side is
    tried. Returns (box centre, receptacle objectId or None) or None when no spot is free.
    """
    world = sim.worlds[0]
    held = world.held_by(agent)
    if held is None:
        return None
    idx = world.index[held]
    size = world.objects[idx].size
    pos = sim.pos[0, agent].tolist()
    r = math.radians(float(sim.yaw[0, agent]))
    ahead = np.array([math.sin(r), math.cos(r)])
    right = np.array([math.cos(r), -math.sin(r)])
    hx, hz = np.array([pos[0], pos[2]]) + _HAND_REACH * ahead if hand is None else (hand[0], hand[-1])
    surfaces = [
        o
        for o in world.objects
        if OBJECT_TYPES[o.object_type].receptacle
        and o.object_id != held
        and o.object_id not in world.picked_by
        and o.lo[0] <= hx <= o.hi[0]
        and o.lo[2] <= hz <= o.hi[2]
        and o.hi[1] <= _HAND_HEIGHT
    ]
    candidates: list[tuple[np.ndarray, str | None]] = []
    if surfaces:
        top = max(surfaces, key=lambda o: o.hi[1])
        candidates.append((np.array([hx, top.hi[1] + size[1] / 2 + 1e-3, hz]), top.object_id))
    for fwd, side in ((0.0, 0.0), (0.15, 0.0), (0.0, 0.2), (0.0, -0.2), (0.3, 0.0)):
        x, z = np.array([hx, hz]) + fwd * ahead + side * right
        candidates.append((np.array([x, size[1] / 2 + 1e-3, z]), None))
    for center, parent in candidates:
        if sim.object_blocker(0, idx, *center.tolist(), ignore_agents=()) is None:
            return center, parent
    return None
