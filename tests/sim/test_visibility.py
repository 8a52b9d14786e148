"""AI2-THOR's visibility rule: in frame, unobstructed, and within visibilityDistance of the agent's
central vertical axis (horizontal distance, whatever the height of the visible surface)."""

import math

import numpy as np
import pytest
import torch

from thorgym.sim import BatchedSimulator

VIS = 64  # the visibility raster itself, so the instance frame is exactly what visibility sees


def _box_xz_distance(x: float, z: float, lo: np.ndarray, hi: np.ndarray) -> float:
    dx = max(lo[0] - x, x - hi[0], 0.0)
    dz = max(lo[2] - z, z - hi[2], 0.0)
    return math.hypot(dx, dz)


def _facing_pose(sim: BatchedSimulator, k: int, gap: float) -> tuple[float, float, float] | None:
    """A free pose `gap` metres (horizontally) from object k's box, facing it, that shows it."""
    obj = sim.worlds[0].objects[k]
    cx, cz = float(obj.center[0]), float(obj.center[2])
    half = obj.size / 2
    for deg in range(0, 360, 15):
        ux, uz = math.sin(math.radians(deg)), math.cos(math.radians(deg))
        # The point `gap` beyond the box face along this direction (axis-aligned faces).
        s = min(
            half[0] / abs(ux) if abs(ux) > 1e-9 else math.inf,
            half[2] / abs(uz) if abs(uz) > 1e-9 else math.inf,
        )
        x, z = cx + ux * (s + gap / max(abs(ux), abs(uz))), cz + uz * (s + gap / max(abs(ux), abs(uz)))
        d = _box_xz_distance(x, z, obj.lo, obj.hi)
        if abs(d - gap) > 0.02:
            continue
        yaw = (math.degrees(math.atan2(cx - x, cz - z))) % 360
        if not sim.teleport([0], [x], [z], [yaw], [0.0]).item():
            continue
        out, _ = sim.render(rgb=False)
        if (out.inst[0] == k).any():
            return x, z, yaw
    return None


def _object(sim: BatchedSimulator, object_type: str) -> int:
    return next(i for i, o in enumerate(sim.worlds[0].objects) if o.object_type == object_type)


@pytest.mark.parametrize("scene", ["FloorPlan1", "FloorPlan2", "FloorPlan3"])
def test_low_object_near_the_agent_axis_is_visible_at_horizon_zero(scene):
    sim = BatchedSimulator([scene], width=VIS, height=VIS, render_rgb=False)
    k = _object(sim, "GarbageCan")
    pose = _facing_pose(sim, k, gap=1.2)
    assert pose is not None, f"no free pose 1.2 m from the GarbageCan of {scene} shows it"
    out, visible = sim.render(rgb=False)
    assert bool(visible[0, 0, k])
    # The camera is high above the can: every pixel showing it is farther than 1.5 m along the
    # ray, so a rule measured from the camera would call it invisible.
    assert float(out.distance[0][out.inst[0] == k].min()) > 1.5


@pytest.mark.parametrize("horizon", [-30.0, 0.0, 30.0, 60.0])
def test_objects_beyond_the_distance_horizontally_are_never_visible(horizon):
    sim = BatchedSimulator(["FloorPlan1", "FloorPlan205"], width=VIS, height=VIS, render_rgb=False)
    shown = 0
    for i in range(2):
        objs = sim.worlds[i].objects
        for x, z in sim.reachable_positions(i)[::7]:
            for yaw in (0.0, 90.0, 180.0, 270.0):
                assert sim.teleport([i], [x], [z], [yaw], [horizon]).item()
                out, visible = sim.render(rgb=False)
                far = [k for k, o in enumerate(objs) if _box_xz_distance(x, z, o.lo, o.hi) > 1.5 + 1e-3]
                assert not visible[i, 0, far].any()
                shown += sum(bool((out.inst[i] == k).any()) for k in far)
    assert shown > 0  # far objects were in frame and unobstructed, and still not visible


def test_object_1_6_m_away_is_not_visible_even_when_in_frame():
    sim = BatchedSimulator(["FloorPlan1"], width=VIS, height=VIS, render_rgb=False)
    k = _object(sim, "GarbageCan")
    pose = _facing_pose(sim, k, gap=1.6)
    assert pose is not None
    out, visible = sim.render(rgb=False)
    assert (out.inst[0] == k).any() and not bool(visible[0, 0, k])


def test_horizontal_distance_of_hits():
    sim = BatchedSimulator(["FloorPlan1"], width=VIS, height=VIS, render_rgb=False)
    out, _ = sim.render(rgb=False)
    hit = out.inst[0] != -100
    # horizontal <= euclidean, with equality only for level rays (the middle rows).
    assert torch.all(out.horizontal[0][hit] <= out.distance[0][hit] + 1e-5)
    assert torch.all(out.horizontal[0][hit] >= out.distance[0][hit] * math.cos(math.radians(46)) - 1e-5)
