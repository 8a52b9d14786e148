"""Physics fidelity of the force actions (MuJoCo): slides, masses, falls, walls, determinism.

Scene FloorPlan201 (living room, floor x in [-3, 3]); a 1 kg Box (0.3 × 0.26 × 0.36 m) is put on
free floor with TeleportObject, then pushed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from thorgym.sim import BatchedSimulator, Controller
from thorgym.sim.objects import OBJECT_TYPES
from thorgym.sim.physics import FORCE_SECONDS, MAX_PUSH_SPEED, ScenePhysics, euler_degrees, push_speed

SCENE = "FloorPlan201"
BOX_Y = 0.13  # half the Box's height: standing on the floor


def _sim_with_box(x: float, z: float) -> tuple[BatchedSimulator, int]:
    sim = BatchedSimulator([SCENE], width=64, height=64)
    box = next(i for i, o in enumerate(sim.worlds[0].objects) if o.object_type == "Box")
    assert bool(sim.teleport_object([0], [box], x, BOX_Y, z)[0])
    return sim, box


def test_pushed_box_slides_along_the_push_and_stays_on_the_floor():
    sim, box = _sim_with_box(-1.0, 0.5)
    r = sim.push_objects([0], [box], [0.0, 0.0, 1.0], 100.0)[0]
    d = r.positions[-1] - r.positions[0]
    assert r.outcome == "rest"
    assert d[2] > 0.2  # 2 m/s against friction 0.6: about 0.34 m
    assert abs(d[0]) < 0.01 and abs(d[1]) < 0.005
    # Coulomb friction: v0²/(2 μ g) with v0 = F·Δt/m, within 25 % (the push acts over 0.02 s)
    v0 = 100.0 * FORCE_SECONDS / 1.0
    assert d[2] == pytest.approx(v0**2 / (2 * 0.6 * 9.81), rel=0.25)
    o = sim.worlds[0].objects[box]
    assert o.center.tolist() == pytest.approx(r.positions[-1].tolist())  # written back
    assert o.parent is None  # on the floor


def test_heavier_object_moves_less_under_the_same_force(monkeypatch):
    moved = {}
    for mass in (1.0, 3.0):
        monkeypatch.setitem(OBJECT_TYPES, "Box", dataclasses.replace(OBJECT_TYPES["Box"], mass=mass))
        sim, box = _sim_with_box(-1.0, 0.5)
        r = sim.push_objects([0], [box], [0.0, 0.0, 1.0], 100.0)[0]
        moved[mass] = float(np.linalg.norm(r.positions[-1] - r.positions[0]))
    assert moved[3.0] < moved[1.0] / 4  # distance ~ 1/m²
    assert moved[3.0] > 0


def test_object_pushed_off_a_table_falls_to_the_floor():
    sim, box = _sim_with_box(-1.0, 0.5)
    world = sim.worlds[0]
    table = next(i for i, o in enumerate(world.objects) if o.object_type == "CoffeeTable")
    t = world.objects[table]  # x in [-1.4, -0.4], top at 0.45
    # A mug near the table's +x edge, pushed towards +x.
    mug = next(
        i
        for i, o in enumerate(world.objects)
        if OBJECT_TYPES[o.object_type].pickupable and o.object_type != "Box"
    )
    m = world.objects[mug]
    x, y = float(t.hi[0]) - 0.1, float(t.hi[1] + m.size[1] / 2)
    assert bool(sim.teleport_object([0], [mug], x, y, float(t.center[2]))[0])
    m.parent = t.object_id
    mass = OBJECT_TYPES[m.object_type].mass
    r = sim.push_objects([0], [mug], [1.0, 0.0, 0.0], MAX_PUSH_SPEED * mass / FORCE_SECONDS * 0.6)[0]
    end = world.objects[mug]
    assert r.outcome == "rest"
    assert end.lo[1] == pytest.approx(0.0, abs=0.01)  # on the floor
    assert end.center[0] > t.hi[0]
    assert end.parent is None
    assert r.positions[:, 1].min() < y - 0.3  # it fell


def test_nothing_passes_through_walls():
    sim, box = _sim_with_box(-2.7, 0.0)  # 0.15 m from the wall at x = -3
    world = sim.worlds[0]
    r = sim.push_objects([0], [box], [-1.0, 0.0, 0.0], MAX_PUSH_SPEED / FORCE_SECONDS)[0]  # the fastest push
    x0 = world.spec.bounds[0]
    assert (r.positions[:, 0] - 0.15 >= x0 - 0.01).all()  # the box's -x face never crosses the wall
    assert world.objects[box].lo[0] >= x0 - 0.01


def test_same_push_gives_the_same_trajectory_also_from_a_new_model():
    sim, box = _sim_with_box(-1.0, 0.5)
    world = sim.worlds[0]
    point = world.objects[box].center + np.array([0.1, 0.05, -0.18])  # off centre: it turns
    a = ScenePhysics(world).push(box, np.array([0.0, 0.0, 1.0]), 80.0, point)
    b = ScenePhysics(world).push(box, np.array([0.0, 0.0, 1.0]), 80.0, point)
    physics = ScenePhysics(world)
    c = physics.push(box, np.array([0.0, 0.0, 1.0]), 80.0, point)
    d = physics.push(box, np.array([0.0, 0.0, 1.0]), 80.0, point)
    for other in (b, c, d):
        np.testing.assert_array_equal(a.positions, other.positions)
        np.testing.assert_array_equal(a.quats, other.quats)
    assert abs(a.quats[-1][0]) < 0.9999  # an off-centre push turns the box


def test_turned_object_keeps_its_extents_and_reports_its_rotation():
    sim, box = _sim_with_box(-1.0, 0.5)
    world = sim.worlds[0]
    o = world.objects[box]
    size = o.size.copy()
    point = o.center + np.array([0.12, 0.0, -0.18])
    sim.push_objects([0], [box], [0.0, 0.0, 1.0], 80.0, point=point)
    assert o.object_id in world.orientation
    np.testing.assert_allclose(world.body_size[o.object_id], size)
    # the axis-aligned box of a box turned about the vertical covers at least its footprint
    assert o.size[0] * o.size[2] >= size[0] * size[2] - 1e-9
    assert o.size[1] == pytest.approx(size[1], abs=1e-3)
    x, y, z = euler_degrees(world.orientation[o.object_id])
    assert min(x, 360 - x) < 1 and min(z, 360 - z) < 1  # turned about the vertical only
    assert min(y, 360 - y) > 1


def test_push_speed_limit():
    sim, box = _sim_with_box(-1.0, 0.5)
    assert push_speed(sim.worlds[0], box, 250.0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="m/s"):
        sim.push_objects([0], [box], [0.0, 0.0, 1.0], 300.0)


# -- the Controller's force actions ------------------------------------------------------------
@pytest.fixture
def living_room():
    with Controller(scene=SCENE, width=64, height=64, renderInstanceSegmentation=True) as c:
        box = next(o for o in c.last_event.metadata["objects"] if o["objectType"] == "Box")
        ev = c.step("TeleportObject", objectId=box["objectId"], position={"x": -1.0, "y": BOX_Y, "z": 0.5})
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        ev = c.step(
            "Teleport",
            position={"x": -1.0, "y": 0.9, "z": -0.25},
            rotation={"x": 0, "y": 0, "z": 0},
            horizon=30,
        )
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        yield c, box["objectId"]


def _obj(ev, oid: str) -> dict:
    return next(o for o in ev.metadata["objects"] if o["objectId"] == oid)


@pytest.mark.parametrize(
    ("action", "kw", "axis", "sign"),
    [
        ("PushObject", {}, "z", 1),
        ("PullObject", {}, "z", -1),
        ("DirectionalPush", {"pushAngle": 90}, "x", 1),  # clockwise: to the agent's right
        ("DirectionalPush", {"pushAngle": -90}, "x", -1),
    ],
)
def test_controller_push_actions_move_the_object_as_in_ai2thor(living_room, action, kw, axis, sign):
    c, oid = living_room
    before = _obj(c.last_event, oid)
    assert before["visible"]
    frame = c.last_event.frame.copy()
    ev = c.step(action, objectId=oid, moveMagnitude=60.0, **kw)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    after = _obj(ev, oid)
    delta = after["position"][axis] - before["position"][axis]
    assert sign * delta > 0.05
    assert after["axisAlignedBoundingBox"]["center"][axis] == pytest.approx(after["position"][axis])
    assert not np.array_equal(frame, ev.frame)  # frames show it


def test_controller_push_by_screen_point(living_room):
    c, oid = living_room
    ev = c.last_event
    pixels = np.argwhere(ev.instance_masks[oid])
    r, col = pixels[len(pixels) // 2]
    before = _obj(ev, oid)["position"]["z"]
    ev = c.step("PushObject", x=(col + 0.5) / 64, y=(r + 0.5) / 64, moveMagnitude=60.0)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    assert _obj(ev, oid)["position"]["z"] > before + 0.05


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"objectId": "Box|+09.00|+00.00|+09.00", "moveMagnitude": 10.0}, "Object ID appears to be invalid"),
        ({"moveMagnitude": -5.0}, "moveMagnitude must be between 0"),
        ({"moveMagnitude": 5000.0}, "m/s"),
        ({"x": 0.5, "y": 0.02, "moveMagnitude": 10.0}, "No SimObject found"),
        ({"x": 1.5, "y": 0.5, "moveMagnitude": 10.0}, "x/y must be in [0:1]"),
    ],
)
def test_controller_push_failures_leave_the_world_unchanged(living_room, kw, message):
    c, oid = living_room
    if "objectId" not in kw and "x" not in kw:
        kw = {"objectId": oid, **kw}
    before = [(o["objectId"], o["position"]) for o in c.last_event.metadata["objects"]]
    ev = c.step("PushObject", **kw)
    assert not ev.metadata["lastActionSuccess"]
    assert message in ev.metadata["errorMessage"]
    assert [(o["objectId"], o["position"]) for o in ev.metadata["objects"]] == before


def test_controller_refuses_non_movable_objects(living_room):
    c, _ = living_room
    sofa = next(o for o in c.last_event.metadata["objects"] if o["objectType"] == "Sofa")
    ev = c.step("PushObject", objectId=sofa["objectId"], moveMagnitude=50.0, forceAction=True)
    assert not ev.metadata["lastActionSuccess"]
    assert ev.metadata["errorMessage"] == "Target Primary Property type incompatible with push/pull"


def test_controller_push_needs_visibility_unless_forced(living_room):
    c, _ = living_room
    hidden = next(
        o
        for o in c.last_event.metadata["objects"]
        if o["pickupable"]
        and not o["visible"]
        and not (o["parentReceptacles"] or [""])[0].startswith(("Cabinet", "Fridge", "Microwave"))
    )
    ev = c.step("PushObject", objectId=hidden["objectId"], moveMagnitude=1.0)
    assert not ev.metadata["lastActionSuccess"] and "not visible" in ev.metadata["errorMessage"]
    ev = c.step("PushObject", objectId=hidden["objectId"], moveMagnitude=1.0, forceAction=True)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "10", None])
def test_controller_push_bad_argument_types_raise(living_room, bad):
    c, oid = living_room
    with pytest.raises(ValueError, match="moveMagnitude"):
        c.step("PushObject", objectId=oid, moveMagnitude=bad)
