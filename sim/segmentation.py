"""Instance and semantic segmentation frames with AI2-THOR's colour tables.

AI2-THOR colours every object instance and every object class, and lists both in the event's
``colors`` (``[{"name": objectId or class, "color": [r, g, b]}]``) for all objects of the scene,
in view or not; the client builds ``color_to_object_id`` / ``object_id_to_color`` from that
list, so ``object_id_to_color["Fridge"]`` is the Fridge class colour. The renderer already
produces an instance-code image (the visibility rule needs it), so both frames are lookups.
"""

from __future__ import annotations

import zlib

import numpy as np

from .world import AGENT_BASE, CEILING, FLOOR, WALL, World

__all__ = ["SegmentationFrames", "color_table", "segment"]

_STRUCTURE = {FLOOR: "Floor", CEILING: "Ceiling", WALL: "Wall"}


def _color(key: str) -> tuple[int, int, int]:
    """A stable colour per name (CRC32 of it), never black (black is "nothing")."""
    h = zlib.crc32(key.encode()) & 0xFFFFFF
    c = ((h >> 16) & 255, (h >> 8) & 255, h & 255)
    return c if any(c) else (1, 1, 1)


def _code_name(world: World, code: int) -> str:
    if code >= 0:
        return world.objects[code].object_id
    if code <= AGENT_BASE:
        return f"agent{AGENT_BASE - code}"
    return _STRUCTURE.get(code, "Background")


def color_table(world: World, agent_count: int) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, colour) of every instance (objectIds, agents, structure) and every object class
    of the world: AI2-THOR's ``colors`` list. Structure names serve as both."""
    keys = [("instance:" + o.object_id, o.object_id) for o in world.objects]
    keys += [("class:" + t, t) for t in dict.fromkeys(o.object_type for o in world.objects)]
    keys += [(f"instance:agent{a}", f"agent{a}") for a in range(agent_count)]
    keys += [("class:" + name, name) for name in _STRUCTURE.values()]
    out, used = [], set()
    for key, name in keys:
        color, k = _color(key), 0
        while color in used:  # a hash collision: colours must name one thing each
            k += 1
            color = _color(f"{key}#{k}")
        used.add(color)
        out.append((name, color))
    return out


class SegmentationFrames:
    """What one agent's view yields: the frames asked for, the instance masks, the colours."""

    def __init__(
        self,
        instance: np.ndarray | None,
        semantic: np.ndarray | None,
        masks: dict[str, np.ndarray],
        class_masks: dict[str, np.ndarray],
        colors: list[tuple[str, tuple[int, int, int]]],
    ) -> None:
        self.instance = instance
        self.semantic = semantic
        self.masks = masks
        self.class_masks = class_masks
        self.colors = colors


def segment(
    world: World, inst: np.ndarray, agent_count: int, instance: bool, semantic: bool
) -> SegmentationFrames:
    """Colour an (H, W) instance-code image (object index, or a structure / agent code).

    Returns the instance frame (per-instance colours) and the semantic frame (per-class
    colours) when asked for, the per-object instance masks and per-class masks of what is in
    view, and the colour table (:func:`color_table`) when either frame was asked for.
    """
    if not (instance or semantic):
        return SegmentationFrames(None, None, {}, {}, [])
    h, w = inst.shape
    table = color_table(world, agent_count)
    colors = dict(table)
    inst_frame = np.zeros((h, w, 3), dtype=np.uint8) if instance else None
    sem_frame = np.zeros((h, w, 3), dtype=np.uint8) if semantic else None
    masks: dict[str, np.ndarray] = {}
    class_masks: dict[str, np.ndarray] = {}
    for code in np.unique(inst).tolist():
        m = inst == code
        name = _code_name(world, code)
        cls = world.objects[code].object_type if code >= 0 else name
        if inst_frame is not None:
            inst_frame[m] = colors.get(name, _color("instance:" + name))
        if sem_frame is not None:
            sem_frame[m] = colors.get(cls, _color("class:" + cls))
        if code >= 0:
            masks[name] = m
            class_masks[cls] = class_masks[cls] | m if cls in class_masks else m
    return SegmentationFrames(inst_frame, sem_frame, masks, class_masks, table)
