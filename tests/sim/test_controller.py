"""AI2-THOR conventions, interactions, visibility and errors of thorgym.sim.Controller."""

import math

import numpy as np
import pytest

from thorgym.sim import Controller


def pose(ev):
    a = ev.metadata["agent"]
    return (a["position"]["x"], a["position"]["z"], a["rotation"]["y"], a["cameraHorizon"])


def teleport(c, x, z, yaw, horizon=0.0, **kw):
    ev = c.step(
        "TeleportFull",
        position={"x": x, "y": 0.9, "z": z},
        rotation={"x": 0, "y": yaw, "z": 0},
        horizon=horizon,
        standing=True,
        **kw,
    )
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    return ev


def open_spot(c):
    """A reachable position whose four neighbours are reachable too."""
    pts = {(p["x"], p["z"]) for p in c.step("GetReachablePositions").metadata["actionReturn"]}
    for x, z in sorted(pts):
        if all(
            (round(x + dx, 2), round(z + dz, 2)) in pts
            for dx, dz in (
                (0.25, 0),
                (-0.25, 0),
                (0, 0.25),
                (0, -0.25),
                (0.25, 0.25),
                (0.5, 0.5),
                (0.5, 0),
            )
        ):
            return x, z
    raise AssertionError("no open spot")


def test_event_contract(kitchen):
    ev = kitchen.last_event
    assert ev.frame.shape == (96, 96, 3) and ev.frame.dtype == np.uint8
    assert ev.depth_frame.shape == (96, 96) and ev.depth_frame.dtype == np.float32
    assert ev.instance_segmentation_frame.shape == (96, 96, 3)
    assert ev.instance_masks and all(
        m.shape == (96, 96) and m.dtype == bool for m in ev.instance_masks.values()
    )
    m = ev.metadata
    for key in (
        "lastAction",
        "lastActionSuccess",
        "errorMessage",
        "actionReturn",
        "sceneName",
        "agent",
        "objects",
        "inventoryObjects",
        "fov",
        "cameraPosition",
        "screenWidth",
        "screenHeight",
    ):
        assert key in m, key
    assert m["sceneName"] == "FloorPlan1" and m["screenWidth"] == 96 and m["fov"] == 90
    obj = m["objects"][0]
    for key in (
        "objectId",
        "objectType",
        "name",
        "visible",
        "distance",
        "position",
        "rotation",
        "axisAlignedBoundingBox",
        "openable",
        "isOpen",
        "pickupable",
        "isPickedUp",
        "receptacle",
        "receptacleObjectIds",
        "parentReceptacles",
        "moveable",
        "mass",
    ):
        assert key in obj, key
    assert len(obj["axisAlignedBoundingBox"]["cornerPoints"]) == 8
    assert ev.events == [ev]


def test_axes_and_moves(kitchen):
    x, z = open_spot(kitchen)
    teleport(kitchen, x, z, 0)
    assert pose(kitchen.step("MoveAhead"))[:2] == (x, z + 0.25)  # +z forward at yaw 0
    assert pose(kitchen.step("MoveRight"))[:2] == (x + 0.25, z + 0.25)  # MoveRight is +x
    assert pose(kitchen.step("MoveLeft"))[:2] == (x, z + 0.25)
    assert pose(kitchen.step("MoveBack"))[:2] == (x, z)
    assert pose(kitchen.step("RotateRight"))[2] == 90  # default rotateStepDegrees 90
    assert pose(kitchen.step("MoveAhead"))[:2] == (x + 0.25, z)  # yaw 90 faces +x
    assert pose(kitchen.step("RotateLeft", degrees=180))[2] == 270
    assert pose(kitchen.step("MoveAhead", moveMagnitude=0.5))[:2] == (x - 0.25, z)


def test_horizon_sign_and_limits(kitchen):
    assert pose(kitchen.step("LookDown"))[3] == 30  # positive looks down
    assert pose(kitchen.step("LookDown"))[3] == 60
    ev = kitchen.step("LookDown")
    assert not ev.metadata["lastActionSuccess"] and "60" in ev.metadata["errorMessage"]
    assert pose(ev)[3] == 60
    kitchen.step("LookUp"), kitchen.step("LookUp"), kitchen.step("LookUp")
    assert pose(kitchen.last_event)[3] == -30
    ev = kitchen.step("LookUp")
    assert not ev.metadata["lastActionSuccess"] and pose(ev)[3] == -30


def test_looking_down_sees_the_floor_closer(kitchen):
    x, z = open_spot(kitchen)
    teleport(kitchen, x, z, 0, horizon=60)
    centre = kitchen.last_event.depth_frame[48, 48]
    # camera 1.576 m above the floor, looking 60° down: slant distance 1.82 m, z-depth the same
    assert centre == pytest.approx(1.576 / math.cos(math.radians(30)), abs=0.03)


def test_45_degree_diagonal_moves():
    with Controller(scene="FloorPlan1", width=64, height=64, rotateStepDegrees=45) as c:
        x, z = open_spot(c)
        teleport(c, x, z, 0)
        assert pose(c.step("RotateRight"))[2] == 45
        assert pose(c.step("MoveAhead"))[:2] == (x + 0.25, z + 0.25)
        assert pose(c.step("MoveBack"))[:2] == (x, z)


def test_failed_move_keeps_pose(kitchen):
    # Walk into a wall: eventually MoveAhead fails and nothing changes.
    for _ in range(40):
        before = kitchen.last_event
        ev = kitchen.step("MoveAhead")
        if not ev.metadata["lastActionSuccess"]:
            break
    else:
        raise AssertionError("never blocked")
    assert pose(ev) == pose(before)
    assert "blocking Agent 0" in ev.metadata["errorMessage"]
    np.testing.assert_array_equal(ev.frame, before.frame)


def test_reachable_positions_are_connected_and_free(kitchen):
    pts = [(p["x"], p["z"]) for p in kitchen.step("GetReachablePositions").metadata["actionReturn"]]
    assert len(pts) > 50
    key = {(round(x / 0.25), round(z / 0.25)) for x, z in pts}
    start = next(iter(key))
    seen, stack = {start}, [start]
    while stack:
        i, j = stack.pop()
        for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if n in key and n not in seen:
                seen.add(n)
                stack.append(n)
    assert seen == key
    for x, z in pts[::7]:
        teleport(kitchen, x, z, 0)


def _fridge_view(c):
    """Open the fridge (forced), find a pose that sees an object inside it."""
    objs = c.last_event.metadata["objects"]
    fridge = next(o for o in objs if o["objectType"] == "Fridge")
    inside = fridge["receptacleObjectIds"]
    assert inside, "FloorPlan1's fridge should hold something"
    assert c.step("OpenObject", objectId=fridge["objectId"], forceAction=True).metadata[
        "lastActionSuccess"
    ]
    fx, fz = fridge["position"]["x"], fridge["position"]["z"]
    pts = [(p["x"], p["z"]) for p in c.step("GetReachablePositions").metadata["actionReturn"]]
    pts.sort(key=lambda p: (p[0] - fx) ** 2 + (p[1] - fz) ** 2)
    for x, z in pts[:12]:
        yaw = math.degrees(math.atan2(fx - x, fz - z))
        for horizon in (0, 30):
            ev = teleport(c, x, z, round(yaw / 45) * 45, horizon)
            seen = [o["objectId"] for o in ev.metadata["objects"] if o["visible"]]
            if any(i in seen for i in inside):
                return fridge["objectId"], inside
    raise AssertionError("no pose sees into the open fridge")


def test_closed_fridge_hides_contents(kitchen):
    fridge, inside = _fridge_view(kitchen)
    ev = kitchen.step("CloseObject", objectId=fridge)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    vis = {o["objectId"]: o["visible"] for o in ev.metadata["objects"]}
    assert vis[fridge] and not any(vis[i] for i in inside)
    assert not any(i in ev.instance_masks for i in inside)
    ev = kitchen.step("OpenObject", objectId=fridge)
    assert ev.metadata["lastActionSuccess"]
    assert any(o["visible"] for o in ev.metadata["objects"] if o["objectId"] in inside)
    assert next(o for o in ev.metadata["objects"] if o["objectId"] == fridge)["isOpen"]


def test_interactions_need_visibility(kitchen):
    objs = kitchen.last_event.metadata["objects"]
    hidden = next(o for o in objs if o["pickupable"] and not o["visible"])
    ev = kitchen.step("PickupObject", objectId=hidden["objectId"])
    assert not ev.metadata["lastActionSuccess"] and "not visible" in ev.metadata["errorMessage"]
    ev = kitchen.step("OpenObject", objectId="Fridge|+09.99|+00.00|+00.00")
    assert not ev.metadata["lastActionSuccess"] and "invalid" in ev.metadata["errorMessage"]


def test_pickup_and_put(kitchen):
    fridge, inside = _fridge_view(kitchen)
    item = next(
        o
        for o in kitchen.last_event.metadata["objects"]
        if o["objectId"] in inside and o["visible"]
    )
    ev = kitchen.step("PickupObject", objectId=item["objectId"])
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    assert ev.metadata["inventoryObjects"] == [
        {"objectId": item["objectId"], "objectType": item["objectType"]}
    ]
    held = next(o for o in ev.metadata["objects"] if o["objectId"] == item["objectId"])
    assert held["isPickedUp"] and not held["visible"]
    ev = kitchen.step("PutObject", objectId=fridge)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    assert ev.metadata["inventoryObjects"] == []
    put = next(o for o in ev.metadata["objects"] if o["objectId"] == item["objectId"])
    assert put["parentReceptacles"] == [fridge]
    ev = kitchen.step("PutObject", objectId=fridge)
    assert not ev.metadata["lastActionSuccess"] and "not holding" in ev.metadata["errorMessage"]


def _positions(ev):
    return {
        o["objectId"]: (o["position"]["x"], o["position"]["y"], o["position"]["z"])
        for o in ev.metadata["objects"]
        if o["pickupable"]
    }


def test_initial_random_spawn_is_reproducible(kitchen):
    before = _positions(kitchen.last_event)
    a = _positions(kitchen.step("InitialRandomSpawn", randomSeed=7))
    b = _positions(kitchen.reset("FloorPlan1") and kitchen.step("InitialRandomSpawn", randomSeed=7))
    c = _positions(kitchen.step("InitialRandomSpawn", randomSeed=8))
    assert a == b and a != before and c != a


def test_determinism_same_actions_same_frames():
    actions = ["RotateRight", "MoveAhead", "LookDown", "MoveAhead", "RotateLeft", "MoveAhead"]
    runs = []
    for _ in range(2):
        with Controller(
            scene="FloorPlan305",
            width=64,
            height=48,
            renderDepthImage=True,
            renderInstanceSegmentation=True,
        ) as c:
            runs.append([c.step(a) for a in actions])
    for e1, e2 in zip(*runs, strict=True):
        np.testing.assert_array_equal(e1.frame, e2.frame)
        np.testing.assert_array_equal(e1.depth_frame, e2.depth_frame)
        np.testing.assert_array_equal(
            e1.instance_segmentation_frame, e2.instance_segmentation_frame
        )
        assert e1.metadata == e2.metadata


def test_multi_agent_events_and_partner_visible():
    with Controller(
        scene="FloorPlan201", width=64, height=64, agentCount=2, renderInstanceSegmentation=True
    ) as c:
        ev = c.last_event
        assert len(ev.events) == 2
        x, z = open_spot(c)
        teleport(c, x, z, 90, agentId=0)
        ev = teleport(c, x + 0.75, z, 270, agentId=1)
        a0, a1 = ev.events
        assert a0.metadata["agent"]["position"]["x"] == x
        assert a1.metadata["agent"]["position"]["x"] == x + 0.75
        assert "agent1" in a0.color_to_object_id.values()  # agent 0 sees agent 1
        assert "agent0" in a1.color_to_object_id.values()
        ev = c.step("MoveAhead", agentId=1)
        assert ev.metadata["agentId"] == 1 and ev.metadata["agent"]["position"]["x"] == x + 0.5
        assert c.step("MoveAhead", agentId=1).metadata[
            "lastActionSuccess"
        ]  # neighbours may stand side by side
        ev = c.step("MoveAhead", agentId=1)  # but not on the partner's spot
        assert not ev.metadata["lastActionSuccess"] and "Agent 0" in ev.metadata["errorMessage"]


@pytest.mark.parametrize("w,h,fov", [(32, 32, 60), (300, 300, 90), (120, 48, 120)])
def test_any_size_and_fov(w, h, fov):
    with Controller(
        scene="FloorPlan402", width=w, height=h, fieldOfView=fov, renderDepthImage=True
    ) as c:
        assert c.last_event.frame.shape == (h, w, 3)
        assert c.last_event.depth_frame.shape == (h, w)
        assert c.last_event.depth_frame.min() > 0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda c: c.step("Fly"), "unknown action 'Fly'"),
        (lambda c: c.step("MoveAhead", magnitude=1), "unknown argument 'magnitude'"),
        (lambda c: c.step("MoveAhead", moveMagnitude="far"), "moveMagnitude"),
        (lambda c: c.step("MoveAhead", moveMagnitude=-1), "moveMagnitude must be positive"),
        (lambda c: c.step("RotateRight", degrees=None), "degrees"),
        (lambda c: c.step("OpenObject"), "objectId"),
        (lambda c: c.step("TeleportFull", position={"x": 0, "y": 0.9, "z": 0}), "TeleportFull"),
        (lambda c: c.step("Pass", agentId=3), "agentId 3"),
        (lambda c: c.step({"action": 5}), "action name"),
        (lambda c: c.reset(scene="FloorPlan99"), "unknown scene 'FloorPlan99'"),
        (lambda c: c.reset(width=10), "width must be an integer between 32 and 1024"),
        (lambda c: c.reset(fieldofview=90), "unknown argument 'fieldofview'"),
        (lambda c: c.reset(agentMode="drone"), "agentMode"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, match):
    with (
        Controller(scene="FloorPlan1", width=32, height=32) as c,
        pytest.raises(ValueError, match=match),
    ):
        call(c)


def test_long_moves_and_teleports_cannot_leave_the_room(kitchen):
    start = pose(kitchen.last_event)
    ev = kitchen.step("MoveAhead", moveMagnitude=25)
    assert not ev.metadata["lastActionSuccess"] and pose(ev) == start
    ev = kitchen.step("Teleport", position={"x": 40, "y": 0.9, "z": 40})
    assert (
        not ev.metadata["lastActionSuccess"]
        and "not a valid agent position" in ev.metadata["errorMessage"]
    )
    x0, z0, x1, z1 = kitchen.simulator.worlds[0].spec.bounds
    ev = kitchen.step("Teleport", position={"x": x1 + 0.5, "y": 0.9, "z": (z0 + z1) / 2})
    assert not ev.metadata["lastActionSuccess"]


def test_teleport_force_action_skips_the_collision_check():
    from thorgym.sim import Controller

    with Controller(scene="FloorPlan201", agentCount=2, width=64, height=64) as c:
        other = c.last_event.events[1].metadata["agent"]["position"]
        target = {"x": other["x"], "y": other["y"], "z": other["z"]}
        ev = c.step("Teleport", position=target, agentId=0)
        assert not ev.metadata["lastActionSuccess"]  # agent 1 stands there
        ev = c.step("Teleport", position=target, agentId=0, forceAction=True)
        assert ev.metadata["lastActionSuccess"]
