"""Interaction by screen point (AI2-THOR's ``step("OpenObject", x=…, y=…)``) and IQA-style scene
set-up (``InitialRandomSpawn(numDuplicatesOfType=…)``, ``RemoveFromScene``) through the genuine
ai2thor client on ``thorgym-thor``.

The direct Controller / BatchedSimulator checks: every action by point, each failure kind with
AI2-THOR's message and an unchanged world, and ``object_at`` against the instance frame.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from thorgym.sim import Controller
from thorgym.sim.batch import POINT_NOTHING, POINT_OK, POINT_TOO_FAR, BatchedSimulator

W = H = 96


def teleport(c: Controller, x: float, z: float, yaw: float, horizon: float) -> Any:
    ev = c.step(
        "TeleportFull",
        position={"x": x, "y": 0.9, "z": z},
        rotation=yaw,
        horizon=horizon,
        standing=True,
    )
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    return ev


def world_state(ev: Any) -> list[dict[str, Any]]:
    """The objects' metadata without what depends on the view (visible, distance)."""
    drop = ("visible", "distance")
    return [{k: v for k, v in o.items() if k not in drop} for o in ev.metadata["objects"]]


def find_point(c: Controller, want, max_tries: int = 400):
    """Teleport to a pose where an object with want(meta) shows; return (x, y, objectId, event).

    The point is a pixel centre of the object's instance mask, chosen so that object_at agrees
    (the object is within visibility distance there).
    """
    sim = c.simulator
    meta = {o["objectId"]: o for o in c.last_event.metadata["objects"]}
    targets = [o for o in meta.values() if want(o)]
    assert targets, "no object of the wanted kind in the scene"
    reach = [(p["x"], p["z"]) for p in c.step("GetReachablePositions").metadata["actionReturn"]]

    def near(p):
        return min((p[0] - o["position"]["x"]) ** 2 + (p[1] - o["position"]["z"]) ** 2 for o in targets)

    tries = 0
    for px, pz in sorted(reach, key=near):
        for yaw in (0.0, 90.0, 180.0, 270.0):
            for horizon in (30.0, 0.0):
                tries += 1
                if tries > max_tries:
                    pytest.fail("no pose shows a wanted object within reach")
                ev = teleport(c, px, pz, yaw, horizon)
                for oid, mask in ev.instance_masks.items():
                    if oid not in meta or not want(meta[oid]) or mask.sum() < 12:
                        continue
                    rows, cols = np.nonzero(mask)
                    k = len(rows) // 2
                    x, y = (cols[k] + 0.5) / W, (rows[k] + 0.5) / H
                    hit = sim.object_at(x, y)
                    if (
                        int(hit.reason[0]) == POINT_OK
                        and sim.worlds[0].objects[int(hit.index[0])].object_id == oid
                    ):
                        return float(x), float(y), oid, ev
    pytest.fail("no pose shows a wanted object")


@pytest.fixture
def kitchen():
    with Controller(scene="FloorPlan1", width=W, height=H, renderInstanceSegmentation=True) as c:
        yield c


# -- success by point ---------------------------------------------------------------------------
def test_open_close_by_point(kitchen):
    x, y, oid, _ = find_point(kitchen, lambda o: o["openable"] and o["receptacle"] and not o["isOpen"])
    ev = kitchen.step("OpenObject", x=x, y=y)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    state = {o["objectId"]: o for o in ev.metadata["objects"]}
    assert state[oid]["isOpen"]
    # Opening changes the view; point at the object again from its new mask.
    mask = ev.instance_masks[oid]
    rows, cols = np.nonzero(mask)
    hits = [
        ((c + 0.5) / W, (r + 0.5) / H)
        for r, c in zip(rows, cols, strict=True)
        if int(kitchen.simulator.object_at((c + 0.5) / W, (r + 0.5) / H).reason[0]) == POINT_OK
    ]
    assert hits
    ev = kitchen.step("CloseObject", x=hits[len(hits) // 2][0], y=hits[len(hits) // 2][1])
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    assert not {o["objectId"]: o for o in ev.metadata["objects"]}[oid]["isOpen"]


def test_pickup_and_put_by_point(kitchen):
    x, y, oid, _ = find_point(kitchen, lambda o: o["pickupable"] and not o["receptacle"])
    ev = kitchen.step("PickupObject", x=x, y=y)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    assert ev.metadata["inventoryObjects"][0]["objectId"] == oid
    rx, ry, rid, _ = find_point(kitchen, lambda o: o["objectType"] in ("CounterTop", "TableTop"))
    ev = kitchen.step("PutObject", x=rx, y=ry)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    state = {o["objectId"]: o for o in ev.metadata["objects"]}
    assert ev.metadata["inventoryObjects"] == []
    assert state[oid]["parentReceptacles"] == [rid]
    assert oid in state[rid]["receptacleObjectIds"]


# -- failures: message, no exception, world unchanged -----------------------------------------
def _fails(c: Controller, action: str, match: str, **kw) -> Any:
    before = world_state(c.last_event)
    inv = c.last_event.metadata["inventoryObjects"]
    ev = c.step(action, **kw)
    assert not ev.metadata["lastActionSuccess"]
    assert match in ev.metadata["errorMessage"], ev.metadata["errorMessage"]
    assert world_state(ev) == before
    assert ev.metadata["inventoryObjects"] == inv
    return ev


def test_point_failures_leave_world_unchanged(kitchen):
    sim = kitchen.simulator
    for x, y in ((1.2, 0.5), (0.5, -0.1), (float("nan"), 0.5)):
        _fails(kitchen, "OpenObject", "x/y must be in [0:1]", x=x, y=y)
    # Nothing under the point: look straight down at open floor.
    x, y, oid, ev = find_point(kitchen, lambda o: o["openable"] and o["receptacle"])
    seg = kitchen.step("LookDown").instance_segmentation_frame
    names = kitchen.last_event.color_to_object_id
    rows, cols = np.nonzero(
        np.all(seg == np.array(kitchen.last_event.object_id_to_color.get("Floor", (-1, -1, -1))), -1)
    )
    if len(rows) == 0:
        rows, cols = np.nonzero(np.all(seg == np.array(kitchen.last_event.object_id_to_color["Wall"]), -1))
    assert len(rows) and names
    fx, fy = (cols[0] + 0.5) / W, (rows[0] + 0.5) / H
    ev = _fails(kitchen, "PickupObject", "No SimObject found at", x=fx, y=fy)
    assert ev.metadata["errorMessage"] == f"No SimObject found at (x: {fx:g}, y: {fy:g})"
    # Cannot take the action: a receptacle that is not pickupable; nothing held to put.
    x, y, oid, _ = find_point(kitchen, lambda o: o["openable"] and o["receptacle"] and not o["isOpen"])
    _fails(kitchen, "PickupObject", f"{oid} is not pickupable", x=x, y=y)
    _fails(kitchen, "PutObject", "Agent 0 is not holding any object", x=x, y=y)
    _fails(kitchen, "CloseObject", f"{oid} is already closed", x=x, y=y)
    x, y, oid, _ = find_point(kitchen, lambda o: not o["openable"] and o["objectType"] != "Floor")
    _fails(kitchen, "OpenObject", f"{oid} is not openable", x=x, y=y)
    x, y, oid, _ = find_point(kitchen, lambda o: o["pickupable"] and not o["receptacle"])
    _fails(kitchen, "PutObject", "Agent 0 is not holding any object", x=x, y=y)
    # Too far: an object under some pixel beyond visibilityDistance.
    far = None
    for yaw in (0.0, 90.0, 180.0, 270.0):
        pose = sim.agent_poses()[0].tolist()
        teleport(kitchen, pose[0], pose[1], yaw, 0.0)
        for r in range(4, H, 6):
            for col in range(4, W, 6):
                hit = sim.object_at((col + 0.5) / W, (r + 0.5) / H)
                if int(hit.reason[0]) == POINT_TOO_FAR:
                    far = ((col + 0.5) / W, (r + 0.5) / H, int(hit.code[0]), float(hit.horizontal[0]))
                    break
            if far:
                break
        if far:
            break
    assert far, "no distant object in view from the start position"
    fx, fy, code, dist = far
    assert dist > 1.5
    oid = sim.worlds[0].objects[code].object_id
    ev = _fails(kitchen, "OpenObject", "is beyond your visibilityDistance: 1.5!", x=fx, y=fy)
    assert ev.metadata["errorMessage"].startswith(
        f"Target sim object: ({oid}) at screen coordinate: ({fx:g}, {fy:g})"
    )
    # forceAction skips the distance check (AI2-THOR): the action itself decides then.
    ev = kitchen.step("OpenObject", x=fx, y=fy, forceAction=True)
    assert "visibilityDistance" not in ev.metadata["errorMessage"]


def test_point_argument_errors_raise(kitchen):
    oid = next(o["objectId"] for o in kitchen.last_event.metadata["objects"] if o["openable"])
    with pytest.raises(ValueError, match="not both"):
        kitchen.step("OpenObject", objectId=oid, x=0.5, y=0.5)
    with pytest.raises(ValueError, match="missing required argument 'objectId'"):
        kitchen.step("PickupObject")
    with pytest.raises(ValueError, match="missing required argument 'y'"):
        kitchen.step("PickupObject", x=0.5)
    with pytest.raises(ValueError, match="must be a number"):
        kitchen.step("PutObject", x=True, y=0.5)
    with pytest.raises(ValueError, match="wrong type"):
        kitchen.step("CloseObject", x="0.5", y=0.5)


# -- object_at against the rendered frame --------------------------------------------------
def test_object_at_matches_instance_frame():
    sim = BatchedSimulator(
        ["FloorPlan1", "FloorPlan205", "FloorPlan310", "FloorPlan402"], width=80, height=64, agent_count=2
    )
    rng = np.random.default_rng(0)
    n = sim.num_worlds
    checked = {POINT_OK: 0, POINT_NOTHING: 0, POINT_TOO_FAR: 0}
    for trial in range(3):
        poses = sim.agent_poses(0)
        sim.teleport(
            range(n),
            poses[:, 0],
            poses[:, 1],
            rng.uniform(0, 360, n),
            rng.choice([-30.0, 0.0, 30.0, 60.0], n),
        )
        inst = sim.observe().instance  # (N, A, H, W)
        vis_dist = sim.visibility_distance
        for agent in (0, 1):
            for _ in range(120):
                x, y = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
                if trial == 0:
                    x[0], y[0] = 1.0, 1.0  # the edges map to the last row / column
                hit = sim.object_at(torch.tensor(x), torch.tensor(y), agent=agent)
                for k in range(n):
                    r, c = min(int(y[k] * 64), 63), min(int(x[k] * 80), 79)
                    want = int(inst[k, agent, r, c])
                    assert int(hit.code[k]) == want, (trial, agent, k, x[k], y[k])
                    reason = int(hit.reason[k])
                    checked[reason] += 1
                    if want < 0:
                        assert reason == POINT_NOTHING and int(hit.index[k]) == -1
                    elif float(hit.horizontal[k]) <= vis_dist:
                        assert reason == POINT_OK and int(hit.index[k]) == want
                    else:
                        assert reason == POINT_TOO_FAR and int(hit.index[k]) == -1
    assert all(v > 0 for v in checked.values()), checked
    # A subset of worlds, one point each.
    hit = sim.object_at([0.5, 0.25], [0.5, 0.75], worlds=[2, 0])
    assert hit.index.shape == (2,)
    assert int(hit.code[0]) == int(sim.observe().instance[2, 0, 32, 40])


def test_batched_interact_at_centre():
    """The IQA path: object_at / interact_at for the image centre in N worlds, no metadata."""
    sim = BatchedSimulator(["FloorPlan1"] * 3, width=64, height=64, render_rgb=False)
    c = Controller(scene="FloorPlan1", width=64, height=64, renderInstanceSegmentation=True)
    x, y, oid, _ = find_point(c, lambda o: o["openable"] and o["receptacle"] and not o["isOpen"])
    pose = c.simulator.agent_poses()[0].tolist()
    # World 0 looks at the object's point; world 1 at the ceiling; world 2 stays put.
    sim.teleport([0, 1], [pose[0]] * 2, [pose[1]] * 2, [pose[2]] * 2, [pose[3], -30.0])
    versions = [w.version for w in sim.worlds]
    ok, errors, target = sim.interact_at("OpenObject", [x, 0.5, 0.5], [y, 0.0, 0.5])
    assert bool(ok[0]) and errors[0] == "" and sim.worlds[0].objects[int(target[0])].object_id == oid
    assert sim.worlds[0].is_open[oid]
    assert not bool(ok[1]) and int(target[1]) == -1 and errors[1].startswith(("No SimObject", "Target sim"))
    assert [w.version for w in sim.worlds][1:] == versions[1:] or bool(ok[2])
    # interact with explicit indices: -1 fails, a second open fails with the world's message.
    idx = sim.worlds[0].index[oid]
    ok, errors = sim.interact("OpenObject", [0, 1], [idx, -1])
    assert ok.tolist() == [False, False]
    assert errors == [f"{oid} is already open", "No object to OpenObject"]
    ok, errors = sim.interact("CloseObject", [0], [idx])
    assert ok.tolist() == [True] and not sim.worlds[0].is_open[oid]
    with pytest.raises(ValueError, match="unknown action"):
        sim.interact("Throw", [0], [idx])


# -- the genuine ai2thor client -------------------------------------------------------------
def _executable() -> str:
    found = shutil.which("thorgym-thor")
    if found:
        return found
    candidate = Path(sys.executable).parent / "thorgym-thor"
    if not candidate.is_file():
        pytest.fail("thorgym-thor is not installed; run `pip install -e .` in this environment")
    return str(candidate)


def test_point_and_scene_setup_through_genuine_client(tmp_path):
    try:
        from ai2thor.controller import Controller as ThorController
    except ImportError:
        pytest.fail("the ai2thor client package is required: pip install 'thorgym[ai2thor]'")
    direct = Controller(scene="FloorPlan1", width=W, height=H, renderInstanceSegmentation=True)
    x, y, oid, _ = find_point(direct, lambda o: o["openable"] and o["receptacle"] and not o["isOpen"])
    pose = direct.simulator.agent_poses()[0].tolist()
    saved = {k: os.environ.get(k) for k in ("HOME", "CUDA_VISIBLE_DEVICES")}
    os.environ["HOME"] = str(tmp_path)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        client = ThorController(
            local_executable_path=_executable(), x_display=":0", scene="FloorPlan1", width=W, height=H,
            server_timeout=60.0, server_start_timeout=60.0,
        )  # fmt: skip
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        ev = client.step(
            "TeleportFull", position={"x": pose[0], "y": 0.9, "z": pose[1]}, rotation=pose[2],
            horizon=pose[3], standing=True,
        )  # fmt: skip
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        ev = client.step("OpenObject", x=x, y=y)
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        assert {o["objectId"]: o for o in ev.metadata["objects"]}[oid]["isOpen"]
        before = world_state(ev)
        ev = client.step("PickupObject", x=1.5, y=0.5)
        assert not ev.metadata["lastActionSuccess"]
        assert ev.metadata["errorMessage"] == "x/y must be in [0:1]"
        assert world_state(ev) == before
        ev = client.step("LookUp")
        ev = client.step("LookUp")
        ev = client.step("CloseObject", x=0.5, y=0.02)  # the ceiling
        assert not ev.metadata["lastActionSuccess"]
        assert ev.metadata["errorMessage"].startswith("No SimObject found at"), ev.metadata["errorMessage"]
        with pytest.raises(ValueError, match="not both"):
            client.step("OpenObject", objectId=oid, x=0.5, y=0.5)
        # IQA-style set-up.
        ev = client.step(
            "InitialRandomSpawn", randomSeed=5,
            numDuplicatesOfType=[{"objectType": "Apple", "count": 3}],
        )  # fmt: skip
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        apples = [o["objectId"] for o in ev.metadata["objects"] if o["objectType"] == "Apple"]
        assert len(apples) == 3 and len(set(apples)) == 3
        ev = client.step("RemoveFromScene", objectId=apples[1])
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        assert apples[1] not in {o["objectId"] for o in ev.metadata["objects"]}
        ev = client.step("RemoveFromScene", objectId=apples[1])
        assert not ev.metadata["lastActionSuccess"]
        assert (
            ev.metadata["errorMessage"]
            == f"objectId: {apples[1]} is not the objectId on any object in the scene!"
        )
        with pytest.raises(ValueError, match="numDuplicatesOfType"):
            client.step(
                "InitialRandomSpawn",
                randomSeed=1,
                numDuplicatesOfType=[{"objectType": "Unicorn", "count": 2}],
            )
    finally:
        proc = client.server.unity_proc
        client.stop()
        proc.wait(timeout=10)
