"""AI2-THOR event metadata for :class:`thorgym.sim.Controller`: every key of AI2-THOR's schema.

AI2-THOR's own test suite validates each event's metadata against a JSON schema
(``ai2thor/tests/data/metadata-schema.json``), so code written for AI2-THOR may read any key it
lists. This module fills all of them: the values thorgym.sim models (poses, boxes, open state,
what is held) from the world, and the rest with what AI2-THOR reports for a scene where the
state is never changed (nothing toggled, broken, dirty, cooked, sliced, filled or used up; room
temperature; no materials; the scene at rest). It is used only where dicts are asked for (the
Controller and ``thorgym-thor``); the batched simulator never builds them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .layout import WALL_HEIGHT
from .objects import OBJECT_TYPES
from .world import World

__all__ = ["box_corners", "held_object_pose", "object_metadata", "scene_bounds", "SCHEMA_DEFAULTS"]

#: Top-level keys AI2-THOR always sends that thorgym.sim has nothing to put in (empty or null,
#: as Unity sends them when the action filled none of them).
SCHEMA_DEFAULTS: dict[str, Any] = {
    "errorCode": None,
    "colors": None,
    "colorBounds": None,
    "collided": False,
    "collidedObjects": [],
    "isSceneAtRest": True,
    "cameraOrthSize": -1.0,
    "thirdPartyCameras": [],
    "flatSurfacesOnGrid": [],
    "distances": [],
    "normals": [],
    "isOpenableGrid": [],
    "segmentedObjectIds": [],
    "objectIdsInBox": [],
    "actionIntReturn": 0,
    "actionFloatReturn": 0.0,
    "actionStringsReturn": [],
    "actionFloatsReturn": [],
    "actionVector3sReturn": [],
    "visibleRange": None,
}

# Hand offset from the agent's position (AI2-THOR's default hand: ahead, right of centre, at
# about chest height) in the agent's frame: right, up, ahead.
_HAND_LOCAL = (0.0, -0.16, 0.46)


def _vec(x: float, y: float, z: float) -> dict[str, float]:
    return {"x": float(x), "y": float(y), "z": float(z)}


def box_corners(lo: np.ndarray, hi: np.ndarray) -> list[list[float]]:
    """The 8 corners of an axis-aligned box, in AI2-THOR's ``cornerPoints`` form."""
    return [
        [float(x), float(y), float(z)] for x in (hi[0], lo[0]) for y in (hi[1], lo[1]) for z in (hi[2], lo[2])
    ]


def scene_bounds(world: World) -> dict[str, Any]:
    """AI2-THOR's ``sceneBounds``: the room's box from the floor to the ceiling."""
    x0, z0, x1, z1 = world.spec.bounds
    lo = np.array([x0, 0.0, z0])
    hi = np.array([x1, WALL_HEIGHT, z1])
    return {
        "center": _vec(*(lo + hi) / 2),
        "size": _vec(*(hi - lo)),
        "cornerPoints": box_corners(lo, hi),
    }


def held_object_pose(
    agent_pos: list[float], yaw: float, camera: list[float], horizon: float
) -> dict[str, Any]:
    """AI2-THOR's ``heldObjectPose``: where the agent's hand holds objects, in the world and
    relative to the camera. Unity reports it whether or not something is held."""
    r = math.radians(yaw)
    right, up, ahead = _HAND_LOCAL
    x = agent_pos[0] + ahead * math.sin(r) + right * math.cos(r)
    z = agent_pos[2] + ahead * math.cos(r) - right * math.sin(r)
    y = camera[1] + up
    return {
        "position": _vec(x, y, z),
        "rotation": _vec(0.0, yaw, 0.0),
        "localPosition": _vec(right, up, ahead),
        "localRotation": _vec(0.0, 0.0, 0.0),
    }


def object_metadata(world: World, i: int, visible: bool, camera: list[float]) -> dict[str, Any]:
    """One entry of ``metadata["objects"]`` with every key of AI2-THOR's object schema.

    ``axisAlignedBoundingBox`` follows the object's state (an open door widens it, by its
    openness); ``objectOrientedBoundingBox`` is given for pickupable objects, as in AI2-THOR,
    and equals the axis-aligned one since objects stay upright and axis-aligned here.
    ``distance`` is from the camera to the object's centre. ``obstructed`` (AI2-THOR: in the
    line of sight but hidden behind something) is not modelled and always False.
    """
    o = world.objects[i]
    t = OBJECT_TYPES[o.object_type]
    held = o.object_id in world.picked_by
    lo, hi = world.extent(i)
    center = (lo + hi) / 2
    is_open = bool(world.is_open[o.object_id])
    contents = world.contents(o.object_id) if t.receptacle else None
    aabb = {"center": _vec(*center), "size": _vec(*(hi - lo)), "cornerPoints": box_corners(lo, hi)}
    oobb = {"cornerPoints": box_corners(o.lo, o.hi)} if t.pickupable else None
    # AI2-THOR's object names are "<Type>_<8 hex digits>"; ours are stable per objectId.
    name = f"{o.object_type}_{o.object_id.split('|', 1)[1].replace('|', '_')}"
    return {
        "objectId": o.object_id,
        "objectType": o.object_type,
        "name": name,
        "position": _vec(*o.center),
        "rotation": _vec(0.0, 90.0 * o.facing, 0.0),
        "visible": bool(visible) and not held,
        "isInteractable": bool(visible) and not held,
        "obstructed": False,
        "distance": math.dist(camera, o.center.tolist()),
        "axisAlignedBoundingBox": aabb,
        "objectOrientedBoundingBox": oobb,
        "receptacle": t.receptacle,
        "receptacleObjectIds": contents,
        "parentReceptacles": [o.parent] if o.parent else None,
        "openable": t.openable,
        "isOpen": is_open,
        "openness": float(world.openness.get(o.object_id, 0.0)) if is_open else 0.0,
        "pickupable": t.pickupable,
        "isPickedUp": held,
        "moveable": t.moveable,
        "mass": t.mass,
        "isMoving": False,
        "toggleable": False,
        "isToggled": False,
        "breakable": False,
        "isBroken": False,
        "canFillWithLiquid": False,
        "isFilledWithLiquid": False,
        "fillLiquid": None,
        "dirtyable": False,
        "isDirty": False,
        "canBeUsedUp": False,
        "isUsedUp": False,
        "cookable": False,
        "isCooked": False,
        "temperature": "RoomTemp",
        "ObjectTemperature": "RoomTemp",
        "isHeatSource": False,
        "isColdSource": False,
        "sliceable": False,
        "isSliced": False,
        "salientMaterials": None,
        "assetId": o.object_type,
        "controlledObjects": None,
    }
