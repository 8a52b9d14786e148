"""IQUAD V1's vocabulary: question types, question objects, receptacles and map classes.

Order and indices follow the reference code (thor-iqa-cvpr-2018 ``constants.OBJECTS``): index 0
is the background, 1–13 the question objects, 14–20 the receptacles; the IQUAD CSV's
``object_id`` and ``container_id`` columns index this list.
"""

from __future__ import annotations

QUESTION_TYPES: tuple[str, ...] = ("existence", "counting", "contains")

QUESTION_OBJECTS: tuple[str, ...] = (
    "Spoon", "Potato", "Fork", "Plate", "Egg", "Tomato", "Bowl",
    "Lettuce", "Apple", "Knife", "Container", "Bread", "Mug",
)  # fmt: skip
RECEPTACLES: tuple[str, ...] = (
    "Sink", "StoveBurner", "TableTop", "GarbageCan", "Microwave", "Fridge", "Cabinet",
)  # fmt: skip
CONTAINERS: tuple[str, ...] = ("GarbageCan", "Microwave", "Fridge", "Cabinet")  # of contains questions

MAP_CLASSES: tuple[str, ...] = ("Background", *QUESTION_OBJECTS, *RECEPTACLES)  # 21
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(MAP_CLASSES)}
NUM_CLASSES = len(MAP_CLASSES)


def class_of(object_type: str) -> int:
    """Map-class index of an AI2-THOR object type (0 for every type outside the 20 classes)."""
    return CLASS_INDEX.get(object_type, 0)
