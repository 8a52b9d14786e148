"""iTHOR scene names, room types and the train/val/test split."""

from __future__ import annotations

import re

ROOM_TYPES: tuple[str, ...] = ("kitchen", "living_room", "bedroom", "bathroom")
_ROOM_OFFSET = {"kitchen": 0, "living_room": 200, "bedroom": 300, "bathroom": 400}
SPLITS: dict[str, range] = {"train": range(1, 21), "val": range(21, 26), "test": range(26, 31)}

_NAME_RE = re.compile(r"^FloorPlan(\d+)(_physics)?$")


def all_scenes() -> list[str]:
    """All 120 iTHOR scene names, kitchens first (FloorPlan1–30, 201–230, 301–330, 401–430)."""
    return [f"FloorPlan{_ROOM_OFFSET[r] + i}" for r in ROOM_TYPES for i in range(1, 31)]


def _valid_names_hint() -> str:
    return (
        "valid scenes are FloorPlan1–FloorPlan30 (kitchens), FloorPlan201–230 (living rooms), "
        "FloorPlan301–330 (bedrooms) and FloorPlan401–430 (bathrooms), optionally with the "
        "'_physics' suffix"
    )


def parse_scene(name: str) -> tuple[str, str, int]:
    """Return (canonical name, room type, index 1–30) for a scene name.

    Raises ValueError naming the bad scene and listing the valid ones.
    """
    if not isinstance(name, str):
        raise ValueError(
            f"scene must be a string such as 'FloorPlan1', got {name!r}: {_valid_names_hint()}"
        )
    m = _NAME_RE.match(name.strip())
    if m:
        number = int(m.group(1))
        room, index = divmod(number, 100)
        if 1 <= index <= 30 and room in (0, 2, 3, 4):
            room_type = ROOM_TYPES[(0, 2, 3, 4).index(room)]
            return f"FloorPlan{number}", room_type, index
    raise ValueError(f"unknown scene {name!r}: {_valid_names_hint()}")


def room_type(name: str) -> str:
    """Room type of a scene: 'kitchen', 'living_room', 'bedroom' or 'bathroom'."""
    return parse_scene(name)[1]


def split_of(name: str) -> str:
    """'train' (1–20), 'val' (21–25) or 'test' (26–30) for a scene."""
    index = parse_scene(name)[2]
    return next(s for s, r in SPLITS.items() if index in r)


def scenes_for(split: str, room_types: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Scene names of a split ('train' | 'val' | 'test'), optionally for some room types only."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLITS)}")
    types = tuple(room_types) if room_types else ROOM_TYPES
    for t in types:
        if t not in ROOM_TYPES:
            raise ValueError(f"unknown room type {t!r}: use one of {list(ROOM_TYPES)}")
    return [f"FloorPlan{_ROOM_OFFSET[t] + i}" for t in types for i in SPLITS[split]]
