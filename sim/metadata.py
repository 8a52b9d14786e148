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

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .layout import WALL_HEIGHT
from .objects import OBJECT_TYPES
from .states import FILLABLE, TOGGLEABLE
from .world import World

__all__ = ["box_corners", "object_rotation", "objects_metadata", "scene_bounds", "SCHEMA_DEFAULTS"]

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


def _vec(x: float, y: float, z: float) -> dict[str, float]:
    return {"x": float(x), "y": float(y), "z": float(z)}


def box_corners(lo: Sequence[float], hi: Sequence[float]) -> list[list[float]]:
    """The 8 corners of an axis-aligned box, in AI2-THOR's ``cornerPoints`` form."""
    (x0, y0, z0), (x1, y1, z1) = list(lo), list(hi)
    return [[x, y, z] for x in (x1, x0) for y in (y1, y0) for z in (z1, z0)]


def scene_bounds(world: World) -> dict[str, Any]:
    """AI2-THOR's ``sceneBounds``: the room's box from the floor to the ceiling."""
    x0, z0, x1, z1 = world.spec.bounds
    lo = np.array([x0, 0.0, z0])
    hi = np.array([x1, WALL_HEIGHT, z1])
    return {
        "center": _vec(*(lo + hi) / 2),
        "size": _vec(*(hi - lo)),
        "cornerPoints": box_corners(lo.tolist(), hi.tolist()),
    }


# Object keys whose values never change in thorgym.sim (state changes it does not model).
_UNMODELLED: dict[str, Any] = {
    "isMoving": False,
    "obstructed": False,
    "breakable": False,
    "isBroken": False,
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
    "controlledObjects": None,
}


def object_rotation(world: World, o: Any) -> dict[str, float]:
    """An object's rotation in degrees: its facing, and the turn a push gave it (physics)."""
    quat = world.orientation.get(o.object_id)
    if quat is None:
        return {"x": 0.0, "y": 90.0 * o.facing, "z": 0.0}
    from .physics import euler_degrees

    x, y, z = euler_degrees(quat)
    return {"x": float(x), "y": (float(y) + 90.0 * o.facing) % 360.0, "z": float(z)}


@functools.lru_cache(maxsize=4096)
def _name(object_id: str, object_type: str) -> str:
    return f"{object_type}_{object_id.split('|', 1)[1].replace('|', '_')}"


def objects_metadata(
    world: World,
    visible: Sequence[bool],
    camera: list[float],
    keep: set[str] | None = None,
    held_at: dict[str, list[float]] | None = None,
) -> list[dict[str, Any]]:
    """``metadata["objects"]``: one entry per object (those in `keep`, if given) with every key
    of AI2-THOR's object schema. A held object is where its holder's hand is (`held_at`:
    objectId -> hand position), as in AI2-THOR.

    ``axisAlignedBoundingBox`` follows the object's state (an open door widens it, by its
    openness); ``objectOrientedBoundingBox`` is given for pickupable objects, as in AI2-THOR,
    and equals the axis-aligned one since objects stay upright and axis-aligned here.
    ``distance`` is from the camera to the object's centre. Toggled and filled states are kept
    (thorgym.sim.states); unmodelled ones (broken, dirty, cooked, sliced, used up;
    ``obstructed``, ``isMoving``) are always False, temperature is room temperature.
    """
    children: dict[str, list[str]] = {}
    for o in world.objects:
        if o.parent is not None:
            children.setdefault(o.parent, []).append(o.object_id)
    out = []
    for i, o in enumerate(world.objects):
        oid = o.object_id
        if keep is not None and oid not in keep:
            continue
        otype = o.object_type
        t = OBJECT_TYPES[otype]
        held = oid in world.picked_by
        is_open = world.is_open[oid]
        cx, cy, cz = center = held_at[oid] if held and held_at and oid in held_at else o.center.tolist()
        sx, sy, sz = o.size.tolist()
        lo = [cx - sx / 2, cy - sy / 2, cz - sz / 2]
        hi = [cx + sx / 2, cy + sy / 2, cz + sz / 2]
        if is_open and world.has_door(i):
            blo, bhi = (v.tolist() for v in world.extent(i))
            size = [bhi[0] - blo[0], bhi[1] - blo[1], bhi[2] - blo[2]]
            mid = [(bhi[0] + blo[0]) / 2, (bhi[1] + blo[1]) / 2, (bhi[2] + blo[2]) / 2]
        else:
            blo, bhi, size, mid = lo, hi, [sx, sy, sz], center
        shown = bool(visible[i]) and not held
        out.append(
            {
                **_UNMODELLED,
                "objectId": oid,
                "objectType": otype,
                # AI2-THOR's names are "<Type>_<8 hex digits>"; ours are stable per objectId.
                "name": _name(oid, otype),
                "position": {"x": cx, "y": cy, "z": cz},
                "rotation": object_rotation(world, o),
                "visible": shown,
                "isInteractable": shown,
                "distance": math.dist(camera, center),
                "axisAlignedBoundingBox": {
                    "center": {"x": mid[0], "y": mid[1], "z": mid[2]},
                    "size": {"x": size[0], "y": size[1], "z": size[2]},
                    "cornerPoints": box_corners(blo, bhi),
                },
                "objectOrientedBoundingBox": {"cornerPoints": box_corners(lo, hi)} if t.pickupable else None,
                "receptacle": t.receptacle,
                "receptacleObjectIds": children.get(oid, []) if t.receptacle else None,
                "parentReceptacles": [o.parent] if o.parent else None,
                "openable": t.openable,
                "isOpen": bool(is_open),
                "openness": float(world.openness.get(oid, 0.0)) if is_open else 0.0,
                "pickupable": t.pickupable,
                "isPickedUp": held,
                "moveable": t.moveable,
                "mass": t.mass,
                "assetId": otype,
                "toggleable": otype in TOGGLEABLE,
                "isToggled": world.toggled.get(oid, False),
                "canFillWithLiquid": otype in FILLABLE,
                "isFilledWithLiquid": oid in world.liquid,
                "fillLiquid": world.liquid.get(oid),
            }
        )
    return out
