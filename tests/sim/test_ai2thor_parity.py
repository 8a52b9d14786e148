"""AI2-THOR parity of ``thorgym.sim.Controller`` itself (the ported suite checks the server).

The same conventions the genuine client sees through ``thorgym-thor`` hold when the Controller
is used directly: every key of AI2-THOR's metadata schema, fractional openness with boxes that
follow it, semantic frames whose classes match the instance frames, per-step render flags,
the object filter, dropping what is held, the Teleport y rule and the reset settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from thorgym.sim import Controller
from thorgym.sim.controller import TELEPORT_Y_TOLERANCE

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "ai2thor_suite" / "data" / "metadata-schema.json").read_text()
)


@pytest.fixture(scope="module")
def c():
    with Controller(scene="FloorPlan1", width=64, height=64) as ctrl:
        yield ctrl


@pytest.fixture
def fresh(c):
    c.initialization_parameters = {"scene": "FloorPlan1", "width": 64, "height": 64}
    c.reset()
    return c


def _obj(ev, object_type):
    return next(o for o in ev.metadata["objects"] if o["objectType"] == object_type)


def test_metadata_follows_the_schema_after_actions_of_every_kind(fresh):
    fridge = _obj(fresh.last_event, "Fridge")["objectId"]
    failed = None
    for action, kw in [
        ("Pass", {}),
        ("MoveAhead", {}),
        ("LookUp", {}),
        ("LookUp", {}),  # fails: errorCode stays null
        ("OpenObject", {"objectId": fridge, "openness": 0.5, "forceAction": True}),
        ("RotateLook", {"rotation": 90, "horizon": 30}),
    ]:
        ev = fresh.step(action, **kw)
        jsonschema.validate(ev.metadata, SCHEMA)
        if action == "LookUp" and not ev:
            failed = ev
    assert failed.metadata["errorCode"] is None and failed.metadata["errorMessage"]
    bounds = ev.metadata["sceneBounds"]
    assert len(bounds["cornerPoints"]) == 8 and bounds["size"]["y"] > 2


def test_openness_is_fractional_and_the_box_grows_with_it(fresh):
    fridge = _obj(fresh.last_event, "Fridge")
    sizes = []
    for openness in (0.25, 0.5, 1.0):
        ev = fresh.step("OpenObject", objectId=fridge["objectId"], openness=openness, forceAction=True)
        got = _obj(ev, "Fridge")
        assert ev.metadata["lastActionSuccess"] and got["isOpen"] and got["openness"] == openness
        sizes.append(got["axisAlignedBoundingBox"]["size"])
    closed = fridge["axisAlignedBoundingBox"]["size"]
    grow = [max(s[k] - closed[k] for k in "xz") for s in sizes]
    assert 0 < grow[0] < grow[1] < grow[2], f"the box should widen with the openness: {grow}"
    assert closed["y"] == sizes[0]["y"]
    ev = fresh.step("OpenObject", objectId=fridge["objectId"], openness=1.0, forceAction=True)
    assert not ev.metadata["lastActionSuccess"] and "already open" in ev.metadata["errorMessage"]
    ev = fresh.step("OpenObject", objectId=fridge["objectId"], openness=2.0, forceAction=True)
    assert not ev.metadata["lastActionSuccess"] and "[0:1]" in ev.metadata["errorMessage"]
    ev = fresh.step("OpenObject", objectId=fridge["objectId"], openness=0, forceAction=True)
    got = _obj(ev, "Fridge")
    assert not got["isOpen"] and got["openness"] == 0 and got["axisAlignedBoundingBox"]["size"] == closed


def test_semantic_frame_colours_each_pixel_by_its_instance_class(fresh):
    ev = fresh.step("Pass", renderInstanceSegmentation=True, renderSemanticSegmentation=True)
    inst, sem = ev.instance_segmentation_frame, ev.semantic_segmentation_frame
    assert ev.class_segmentation_frame is sem
    objects = {o["objectId"]: o["objectType"] for o in ev.metadata["objects"]}
    seen = 0
    for color in np.unique(inst.reshape(-1, 3), axis=0):
        name = ev.color_to_object_id[tuple(int(v) for v in color)]
        mask = (inst == color).all(-1)
        cls = objects.get(name, name)
        assert (sem[mask] == ev.object_id_to_color[cls]).all(), name
        if name in objects:
            assert np.array_equal(ev.instance_masks[name], mask)
            assert ev.class_masks[cls][mask].all()
            seen += 1
    assert seen > 0
    # every instance and class of the scene has a colour, in view or not
    assert set(objects) | set(objects.values()) <= set(ev.object_id_to_color)
    nxt = fresh.step("Pass")
    assert nxt.instance_segmentation_frame is None and nxt.semantic_segmentation_frame is None
    assert nxt.metadata["colors"] is None and nxt.color_to_object_id == {}


def test_object_filter_and_drop(fresh):
    ids = [o["objectId"] for o in fresh.last_event.metadata["objects"]]
    ev = fresh.step("SetObjectFilter", objectIds=ids[:2])
    assert [o["objectId"] for o in ev.metadata["objects"]] == ids[:2]
    assert len(fresh.step("ResetObjectFilter").metadata["objects"]) == len(ids)
    fresh.step("SetObjectFilter", objectIds=[])
    assert len(fresh.reset().metadata["objects"]) == len(ids), "a reset clears the filter"
    with pytest.raises(ValueError, match="objectIds"):
        fresh.step("SetObjectFilter", objectIds="Fridge")

    assert not fresh.step("DropHandObject")  # nothing held
    item = next(
        o for o in fresh.last_event.metadata["objects"] if o["pickupable"] and not o["receptacleObjectIds"]
    )
    assert fresh.step("PickupObject", objectId=item["objectId"], forceAction=True)
    ev = fresh.step("DropHandObject")
    assert ev, ev.metadata["errorMessage"]
    dropped = next(o for o in ev.metadata["objects"] if o["objectId"] == item["objectId"])
    assert not dropped["isPickedUp"] and ev.metadata["inventoryObjects"] == []
    agent = ev.metadata["agent"]["position"]
    assert np.hypot(dropped["position"]["x"] - agent["x"], dropped["position"]["z"] - agent["z"]) < 1.0
    assert dropped["axisAlignedBoundingBox"]["cornerPoints"][-1][1] >= -1e-6, "rests above the floor"


def test_teleport_y_rule_flat_form_and_rotate_look(fresh):
    start = fresh.last_event.metadata["agent"]
    y = start["position"]["y"]
    x, z = start["position"]["x"], start["position"]["z"]
    assert fresh.step("Teleport", x=x, y=y + TELEPORT_Y_TOLERANCE - 0.001, z=z)
    ev = fresh.step("Teleport", x=x, y=y + 0.2, z=z)
    assert not ev and "y position" in ev.metadata["errorMessage"]
    with pytest.raises(ValueError, match="not both"):
        fresh.step("Teleport", x=x, z=z, position={"x": x, "y": y, "z": z})
    ev = fresh.step("RotateLook", rotation=180, horizon=30)
    assert ev.metadata["agent"]["rotation"]["y"] == 180 and ev.metadata["agent"]["cameraHorizon"] == 30
    assert ev.metadata["agent"]["position"] == start["position"]


def test_reset_keeps_earlier_settings_until_the_parameters_are_replaced(fresh):
    assert len(fresh.reset(agentCount=2).events) == 2
    assert len(fresh.reset().events) == 2, "as AI2-THOR's client, reset() keeps earlier settings"
    fresh.initialization_parameters = {"scene": "FloorPlan1", "width": 64, "height": 64}
    assert len(fresh.reset().events) == 1
    assert fresh.reset(renderClassImage=True).semantic_segmentation_frame is not None
    with pytest.raises(ValueError, match="unknown argument"):
        fresh.initialization_parameters = {"agentCont": 2}


def test_interactable_poses_see_the_object(fresh):
    fridge = _obj(fresh.last_event, "Fridge")["objectId"]
    poses = fresh.step("GetInteractablePoses", objectId=fridge, horizons=[0, 30], maxPoses=5).metadata[
        "actionReturn"
    ]
    assert 0 < len(poses) <= 5
    for pose in poses:
        ev = fresh.step("TeleportFull", **pose)
        assert ev and next(o for o in ev.metadata["objects"] if o["objectId"] == fridge)["visible"]
    ev = fresh.step("GetInteractablePoses", objectId="Nope|1|2|3")
    assert not ev and "Nope|1|2|3" in ev.metadata["errorMessage"]
    with pytest.raises(ValueError, match="crouching"):
        fresh.step("GetInteractablePoses", objectId=fridge, standings=[False])


def test_third_party_camera_roll_turns_the_image(fresh):
    cam = fresh.last_event.metadata["cameraPosition"]
    yaw = fresh.last_event.metadata["agent"]["rotation"]["y"] + 180  # looking back, past the agent
    for roll in (0, 90):
        fresh.step("AddThirdPartyCamera", position=cam, rotation={"x": 20, "y": yaw, "z": roll})
    ev = fresh.step("Pass", renderInstanceSegmentation=True)
    assert [c["rotation"]["z"] for c in ev.metadata["thirdPartyCameras"]] == [0, 90]
    frames = ev.third_party_instance_segmentation_frames
    assert len(frames) == 2 and len(ev.third_party_camera_frames) == 2 and ev.third_party_depth_frames == []
    # Unity's roll (z, left-handed) turns the camera counter-clockwise: the picture clockwise
    same = (np.rot90(frames[0], k=-1) == frames[1]).all(-1).mean()
    other = (np.rot90(frames[0], k=1) == frames[1]).all(-1).mean()
    assert same > 0.97 and other < same - 0.1, (same, other)
    assert fresh.reset().metadata["thirdPartyCameras"] == []


def test_held_object_stays_in_view_and_reach(fresh):
    assert "not holding" in fresh.step("MoveHeldObject", ahead=0.1).metadata["errorMessage"]
    item = next(
        o for o in fresh.last_event.metadata["objects"] if o["pickupable"] and not o["receptacleObjectIds"]
    )
    fresh.step("PickupObject", objectId=item["objectId"], forceAction=True)
    before = fresh.last_event.metadata["heldObjectPose"]
    for kw in ({"ahead": -0.45}, {"right": 1.0}, {"ahead": 2.0}):
        ev = fresh.step("MoveHeldObject", **kw)
        assert not ev and ev.metadata["heldObjectPose"] == before, kw
    ev = fresh.step("MoveHeldObject", right=0.1)
    assert ev and ev.metadata["heldObjectPose"]["localPosition"]["x"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="not both"):
        fresh.step("RotateHeldObject", pitch=10, rotation={"x": 0, "y": 0, "z": 0})


def test_toggle_and_liquid_states(fresh):
    objects = fresh.last_event.metadata["objects"]
    lamp = next(o["objectId"] for o in objects if o["toggleable"])
    plain = next(o["objectId"] for o in objects if not o["toggleable"] and not o["canFillWithLiquid"])
    assert fresh.step("ToggleObjectOn", objectId=lamp, forceAction=True)
    ev = fresh.step("ToggleObjectOn", objectId=lamp, forceAction=True)
    assert not ev and ev.metadata["errorMessage"] == "can't toggle object on if it's already on!"
    assert not fresh.step("ToggleObjectOff", objectId=plain, forceAction=True)
    cup = next(o["objectId"] for o in objects if o["canFillWithLiquid"])
    with pytest.raises(ValueError, match="fillLiquid must be one of"):
        fresh.step("FillObjectWithLiquid", objectId=cup, fillLiquid="milk", forceAction=True)
    assert not fresh.step("EmptyLiquidFromObject", objectId=cup, forceAction=True)  # already empty
    ev = fresh.reset()
    assert not next(o for o in ev.metadata["objects"] if o["objectId"] == lamp)["isToggled"], (
        "a reset restores"
    )


def test_a_held_object_is_where_the_hand_is(fresh):
    item = next(
        o for o in fresh.last_event.metadata["objects"] if o["pickupable"] and not o["receptacleObjectIds"]
    )
    ev = fresh.step("PickupObject", objectId=item["objectId"], forceAction=True)
    held = next(o for o in ev.metadata["objects"] if o["objectId"] == item["objectId"])
    assert held["isPickedUp"] and held["position"] == ev.metadata["heldObjectPose"]["position"]
    ev = fresh.step("MoveHeldObject", up=0.05)
    held = next(o for o in ev.metadata["objects"] if o["objectId"] == item["objectId"])
    assert held["position"] == ev.metadata["heldObjectPose"]["position"]
    assert held["axisAlignedBoundingBox"]["center"] == held["position"]
