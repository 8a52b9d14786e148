"""IQA-style scene set-up: InitialRandomSpawn(numDuplicatesOfType=…) and RemoveFromScene."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from thorgym.envs.worlds import SimWorlds
from thorgym.sim.batch import BatchedSimulator
from thorgym.sim.layout import _SMALL_OBJECTS


def counts(ev):
    return Counter(o["objectType"] for o in ev.metadata["objects"])


def placements(ev):
    return {o["objectId"]: (o["position"], o["parentReceptacles"]) for o in ev.metadata["objects"]}


def test_duplicates_reach_the_requested_count(kitchen):
    start = counts(kitchen.last_event)
    assert start["Apple"] == 1 and start["Tomato"] == 2 and start["Kettle"] == 0
    before = {o["objectId"]: o for o in kitchen.last_event.metadata["objects"]}
    ev = kitchen.step(
        "InitialRandomSpawn",
        randomSeed=11,
        numDuplicatesOfType=[
            {"objectType": "Apple", "count": 3},
            {"objectType": "Tomato", "count": 1},  # fewer than present: the extra one stays put
            {"objectType": "Kettle", "count": 2},  # none in the scene: nothing to copy
            {"objectType": "Fridge", "count": 2},  # not pickupable: ignored, as AI2-THOR does
        ],
    )
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    got = counts(ev)
    assert got["Apple"] == 3 and got["Tomato"] == 2 and got["Kettle"] == 0 and got["Fridge"] == 1
    ids = [o["objectId"] for o in ev.metadata["objects"]]
    assert len(ids) == len(set(ids))
    apples = [o for o in ev.metadata["objects"] if o["objectType"] == "Apple"]
    original = next(i for i in before if i.startswith("Apple|"))
    assert {a["objectId"] for a in apples} == {original, f"{original}_copy_0", f"{original}_copy_1"}
    allowed = dict((t, recs) for t, _, _, recs in _SMALL_OBJECTS["kitchen"])["Apple"]
    state = {o["objectId"]: o for o in ev.metadata["objects"]}
    for a in apples:
        (parent,) = a["parentReceptacles"]
        assert state[parent]["objectType"] in allowed
        assert a["objectId"] in state[parent]["receptacleObjectIds"]
        assert a["pickupable"] and not a["isPickedUp"]
    tomatoes = [o for o in ev.metadata["objects"] if o["objectType"] == "Tomato"]
    assert tomatoes[1]["position"] == before[tomatoes[1]["objectId"]]["position"]
    # The copies are real objects: boxes, instance codes, visibility columns.
    sim = kitchen.simulator
    assert sim.visible().shape == (1, 1, len(ev.metadata["objects"]))
    codes = set(sim.worlds[0].boxes().inst.tolist())
    assert {sim.worlds[0].index[a["objectId"]] for a in apples} <= codes
    # A copy can be targeted like any object (forced: it need not be in view).
    ev = kitchen.step("PickupObject", objectId=f"{original}_copy_1", forceAction=True)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]


def test_duplicates_are_deterministic_and_keep_original_placements(kitchen):
    dup = [{"objectType": "Mug", "count": 3}, {"objectType": "Egg", "count": 2}]
    a = placements(kitchen.step("InitialRandomSpawn", randomSeed=4, numDuplicatesOfType=dup))
    kitchen.reset("FloorPlan1")
    b = placements(kitchen.step("InitialRandomSpawn", randomSeed=4, numDuplicatesOfType=dup))
    assert a == b
    kitchen.reset("FloorPlan1")
    c = placements(kitchen.step("InitialRandomSpawn", randomSeed=5, numDuplicatesOfType=dup))
    assert set(a) == set(c) and a != c
    # Without duplicates the originals land exactly where they do with them.
    kitchen.reset("FloorPlan1")
    plain = placements(kitchen.step("InitialRandomSpawn", randomSeed=4))
    assert {k: v for k, v in a.items() if "_copy_" not in k} == plain
    kitchen.reset("FloorPlan1")
    empty = placements(kitchen.step("InitialRandomSpawn", randomSeed=4, numDuplicatesOfType=[]))
    assert empty == plain


def test_remove_from_scene(kitchen):
    ev = kitchen.last_event
    state = {o["objectId"]: o for o in ev.metadata["objects"]}
    # A small object resting on a receptacle, made visible by teleporting next to it.
    target = next(
        o
        for o in ev.metadata["objects"]
        if o["pickupable"]
        and not o["receptacle"]
        and o["parentReceptacles"]
        and state[o["parentReceptacles"][0]]["objectType"] in ("CounterTop", "TableTop")
    )
    oid, parent = target["objectId"], target["parentReceptacles"][0]
    assert oid in state[parent]["receptacleObjectIds"]
    sim = kitchen.simulator
    seen = None
    tx, tz = target["position"]["x"], target["position"]["z"]
    for px, pz in sorted(sim.reachable_positions(0), key=lambda p: (p[0] - tx) ** 2 + (p[1] - tz) ** 2):
        for yaw in (0.0, 90.0, 180.0, 270.0):
            kitchen.step(
                "TeleportFull",
                position={"x": px, "y": 0.9, "z": pz},
                rotation=yaw,
                horizon=30.0,
                standing=True,
            )
            if oid in kitchen.last_event.instance_masks:
                seen = kitchen.last_event
                break
        if seen:
            break
    assert seen is not None, "the object never shows"
    n = len(seen.metadata["objects"])
    ev = kitchen.step("RemoveFromScene", objectId=oid)
    assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
    ids = [o["objectId"] for o in ev.metadata["objects"]]
    assert oid not in ids and len(ids) == n - 1
    assert oid not in ev.instance_masks
    assert oid not in {o["objectId"]: o for o in ev.metadata["objects"]}[parent]["receptacleObjectIds"]
    assert not (ev.instance_segmentation_frame == np.array(seen.object_id_to_color[oid])).all(-1).any()
    assert sim.visible().shape == (1, 1, n - 1)
    # Unknown objectId: fails, nothing changes.
    before = [o["objectId"] for o in ev.metadata["objects"]]
    ev = kitchen.step("RemoveFromScene", objectId=oid)
    assert not ev.metadata["lastActionSuccess"]
    assert ev.metadata["errorMessage"] == f"objectId: {oid} is not the objectId on any object in the scene!"
    assert [o["objectId"] for o in ev.metadata["objects"]] == before
    with pytest.raises(ValueError, match="objectId"):
        kitchen.step("RemoveFromScene")


def test_remove_held_object_and_furniture(kitchen):
    objs = kitchen.last_event.metadata["objects"]
    held = next(o["objectId"] for o in objs if o["pickupable"] and not o["receptacle"])
    ev = kitchen.step("PickupObject", objectId=held, forceAction=True)
    assert ev.metadata["inventoryObjects"][0]["objectId"] == held
    ev = kitchen.step("RemoveFromScene", objectId=held)
    assert ev.metadata["lastActionSuccess"] and ev.metadata["inventoryObjects"] == []
    assert held not in kitchen.simulator.worlds[0].picked_by
    # Furniture goes with what stands on it; the rest keeps its state.
    table = next(o for o in ev.metadata["objects"] if o["objectType"] == "TableTop")
    on_it = set(table["receptacleObjectIds"])
    assert on_it
    ev = kitchen.step("RemoveFromScene", objectId=table["objectId"])
    ids = {o["objectId"] for o in ev.metadata["objects"]}
    assert table["objectId"] not in ids and not (on_it & ids)
    world = kitchen.simulator.worlds[0]
    assert all(o.parent in world.index or o.parent is None for o in world.objects)


def test_world_api_removes_contents_onto_support():
    sim = BatchedSimulator(["FloorPlan1"], width=32, height=32)
    world = sim.worlds[0]
    bowl = next(o for o in world.objects if o.object_type == "Bowl")
    spoon = next(o for o in world.objects if o.object_type == "Spoon")
    # Put the spoon in the bowl by hand, then remove the bowl: the spoon lands on the bowl's support.
    spoon.parent, spoon.inside = bowl.object_id, True
    spoon.center = np.array([bowl.center[0], bowl.hi[1] + spoon.size[1] / 2, bowl.center[2]])
    assert world.remove(bowl.object_id) is None
    assert spoon.parent == bowl.parent and abs(spoon.lo[1] - bowl.lo[1]) < 1e-9
    assert world.remove(bowl.object_id).startswith("objectId: ")


def test_bad_duplicates_raise(kitchen):
    bad = [
        ([{"objectType": "Apple"}], "exactly 'objectType' and 'count'"),
        ([("Apple", 2)], "must be a dict"),
        ([{"objectType": "Unicorn", "count": 2}], "unknown objectType 'Unicorn'"),
        ([{"objectType": "Apple", "count": -1}], "non-negative integer"),
        ([{"objectType": "Apple", "count": True}], "non-negative integer"),
        ([{"objectType": "Apple", "count": 1.5}], "non-negative integer"),
        ([{"objectType": "Apple", "count": 2}, {"objectType": "Apple", "count": 3}], "listed twice"),
    ]
    before = placements(kitchen.last_event)
    for dup, match in bad:
        with pytest.raises(ValueError, match=match):
            kitchen.step("InitialRandomSpawn", randomSeed=1, numDuplicatesOfType=dup)
    with pytest.raises(ValueError, match="numDuplicatesOfType"):
        kitchen.step("InitialRandomSpawn", numDuplicatesOfType={"Apple": 2})
    assert placements(kitchen.step("Pass")) == before
    with pytest.raises(ValueError, match="Unicorn"):
        kitchen.simulator.worlds[0].random_spawn(0, num_duplicates_of_type={"Unicorn": 1})


def test_batched_worlds_with_different_object_counts():
    sim = BatchedSimulator(["FloorPlan1", "FloorPlan1"], width=48, height=48)
    n0 = len(sim.worlds[0].objects)
    sim.worlds[1].random_spawn(3, num_duplicates_of_type={"Apple": 3, "Mug": 3, "Plate": 3})
    n1 = len(sim.worlds[1].objects)
    assert n1 > n0
    out = sim.observe()
    assert out.visible.shape == (2, 1, n1)
    assert int(out.instance[1].max()) < n1 and int(out.instance[0].max()) < n0
    # Removing shrinks a world; the batch keeps rendering with stale boxes switched off.
    for oid in [o.object_id for o in sim.worlds[1].objects if "_copy_" in o.object_id]:
        assert sim.worlds[1].remove(oid) is None
    assert sim.visible().shape == (2, 1, n0)
    out = sim.observe()
    assert int(out.instance.max()) < n0
    # SimWorlds (the ObjectNav vector env's worlds) re-indexes types when objects change.
    worlds = SimWorlds(2, "FloorPlan1", width=48, height=48)
    assert worlds.target_visible(["Apple", "Apple"]).shape == (2,)
    worlds.sim.worlds[0].random_spawn(2, num_duplicates_of_type={"Apple": 3})
    worlds.sim.worlds[1].remove(
        next(o.object_id for o in worlds.sim.worlds[1].objects if o.object_type == "Apple")
    )
    vis = worlds.sim.visible()[:, 0].numpy()
    for i in range(2):
        types = [o.object_type for o in worlds.sim.worlds[i].objects]
        want = any(vis[i, k] and t == "Apple" for k, t in enumerate(types))
        assert bool(worlds.target_visible(["Apple", "Apple"])[i]) == want
