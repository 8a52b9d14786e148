"""AI2-THOR object types used by the built-in simulator, with their properties.

Names follow AI2-THOR's object-type vocabulary as the papers used it (SAVN, IQA), so ``Lamp``,
``TableTop`` and ``Container`` appear as in those papers. Sizes are typical extents in metres
(x = width, y = height, z = depth, facing +z); masses in kg are AI2-THOR-like.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectType:
    name: str
    size: tuple[float, float, float]
    mass: float = 1.0
    pickupable: bool = False
    openable: bool = False
    receptacle: bool = False
    moveable: bool = False
    pattern: int = 0  # 0 plain, 1 horizontal stripes, 2 checker: gives the learner texture cues


def _t(name: str, size: tuple[float, float, float], mass: float, flags: str = "", pattern: int = 0):
    return ObjectType(
        name,
        size,
        mass,
        pickupable="p" in flags,
        openable="o" in flags,
        receptacle="r" in flags,
        moveable="m" in flags,
        pattern=pattern,
    )


# flags: p pickupable, o openable, r receptacle, m moveable
_TYPES = [
    # furniture and fixtures
    _t("CounterTop", (1.0, 0.06, 0.62), 100.0, "r", 2),
    _t("Cabinet", (0.5, 0.8, 0.55), 20.0, "or", 1),
    _t("Fridge", (0.76, 1.8, 0.72), 90.0, "or", 1),
    _t("Microwave", (0.5, 0.3, 0.38), 12.0, "or", 1),
    _t("Sink", (0.62, 0.1, 0.46), 20.0, "r"),
    _t("StoveBurner", (0.26, 0.04, 0.26), 5.0, "r", 2),
    _t("Toaster", (0.3, 0.2, 0.18), 2.0, "m"),
    _t("CoffeeMaker", (0.24, 0.36, 0.26), 3.0, "m", 1),
    _t("GarbageCan", (0.34, 0.42, 0.34), 4.0, "rm", 1),
    _t("TableTop", (1.2, 0.76, 0.8), 30.0, "r", 2),
    _t("Sofa", (1.9, 0.8, 0.9), 60.0, "r", 1),
    _t("ArmChair", (0.9, 0.85, 0.85), 25.0, "rm", 1),
    _t("CoffeeTable", (1.0, 0.45, 0.6), 15.0, "rm", 2),
    _t("TVStand", (1.4, 0.5, 0.45), 20.0, "r", 1),
    _t("Television", (1.1, 0.66, 0.1), 10.0, "m"),
    _t("SideTable", (0.5, 0.62, 0.5), 8.0, "rm", 2),
    _t("FloorLamp", (0.34, 1.6, 0.34), 6.0, "m"),
    _t("Bed", (1.5, 0.6, 2.0), 70.0, "r", 2),
    _t("Dresser", (1.2, 0.9, 0.5), 40.0, "r", 1),
    _t("Desk", (1.2, 0.76, 0.6), 25.0, "r"),
    _t("Toilet", (0.46, 0.78, 0.7), 30.0, "r"),
    _t("Bathtub", (1.6, 0.55, 0.76), 80.0, "r", 1),
    _t("Mirror", (0.7, 0.8, 0.03), 5.0, ""),
    _t("LightSwitch", (0.09, 0.13, 0.02), 0.1, ""),
    _t("ShelvingUnit", (0.9, 1.2, 0.4), 15.0, "r", 1),
    # small objects
    _t("Bowl", (0.18, 0.08, 0.18), 0.4, "pr"),
    _t("Box", (0.36, 0.26, 0.3), 1.0, "por", 1),
    _t("Spoon", (0.04, 0.02, 0.18), 0.1, "p"),
    _t("Fork", (0.04, 0.02, 0.18), 0.1, "p"),
    _t("Knife", (0.04, 0.02, 0.28), 0.2, "p"),
    _t("Potato", (0.09, 0.07, 0.12), 0.2, "p"),
    _t("Plate", (0.24, 0.03, 0.24), 0.5, "pr", 2),
    _t("Egg", (0.05, 0.07, 0.05), 0.06, "p"),
    _t("Tomato", (0.1, 0.09, 0.1), 0.15, "p"),
    _t("Lettuce", (0.2, 0.18, 0.2), 0.3, "p", 1),
    _t("Apple", (0.09, 0.1, 0.09), 0.2, "p"),
    _t("Container", (0.14, 0.2, 0.14), 0.3, "p", 1),
    _t("Bread", (0.26, 0.12, 0.13), 0.4, "p", 2),
    _t("Mug", (0.12, 0.11, 0.09), 0.3, "pr"),
    _t("Cup", (0.09, 0.11, 0.09), 0.2, "pr"),
    _t("Pot", (0.3, 0.18, 0.3), 1.5, "pr", 1),
    _t("Pan", (0.3, 0.06, 0.45), 1.0, "pr"),
    _t("Kettle", (0.2, 0.22, 0.2), 1.0, "p", 1),
    _t("SaltShaker", (0.05, 0.1, 0.05), 0.1, "p"),
    _t("DishSponge", (0.1, 0.04, 0.07), 0.05, "p", 2),
    _t("SoapBottle", (0.08, 0.2, 0.08), 0.3, "p", 1),
    _t("Pillow", (0.55, 0.16, 0.38), 0.5, "p", 2),
    _t("Laptop", (0.36, 0.03, 0.26), 2.0, "op", 1),
    _t("RemoteControl", (0.06, 0.03, 0.18), 0.2, "p"),
    _t("Newspaper", (0.3, 0.02, 0.4), 0.3, "p", 1),
    _t("Statue", (0.14, 0.3, 0.14), 1.0, "p"),
    _t("Vase", (0.14, 0.28, 0.14), 0.8, "p", 1),
    _t("KeyChain", (0.07, 0.02, 0.07), 0.05, "p"),
    _t("HousePlant", (0.3, 0.5, 0.3), 3.0, "m", 2),
    _t("Lamp", (0.24, 0.5, 0.24), 1.5, "m", 1),
    _t("Book", (0.2, 0.05, 0.26), 0.6, "op", 1),
    _t("AlarmClock", (0.14, 0.12, 0.08), 0.3, "p", 2),
    _t("CellPhone", (0.07, 0.01, 0.14), 0.2, "p"),
    _t("CD", (0.12, 0.01, 0.12), 0.05, "p", 2),
    _t("Pencil", (0.015, 0.015, 0.18), 0.02, "p"),
    _t("ToiletPaper", (0.12, 0.11, 0.12), 0.1, "p", 1),
    _t("Towel", (0.45, 0.5, 0.06), 0.4, "p", 1),
    _t("Candle", (0.08, 0.14, 0.08), 0.2, "p"),
    _t("SprayBottle", (0.09, 0.24, 0.09), 0.4, "p", 1),
    _t("Plunger", (0.14, 0.46, 0.14), 0.5, "p"),
    _t("Cloth", (0.25, 0.02, 0.25), 0.1, "p", 2),
]

OBJECT_TYPES: dict[str, ObjectType] = {t.name: t for t in _TYPES}
TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in _TYPES)
TYPE_INDEX: dict[str, int] = {n: i for i, n in enumerate(TYPE_NAMES)}


def _palette(n: int) -> list[tuple[float, float, float]]:
    """Distinct colours: golden-ratio hue steps, saturation and value cycled."""
    out = []
    for i in range(n):
        h = (i * 0.6180339887) % 1.0
        s = (0.85, 0.6, 0.75)[i % 3]
        v = (0.95, 0.75, 0.6)[(i // 3) % 3]
        out.append(colorsys.hsv_to_rgb(h, s, v))
    return out


TYPE_COLORS: dict[str, tuple[float, float, float]] = dict(
    zip(TYPE_NAMES, _palette(len(TYPE_NAMES)), strict=True)
)

# Structural surfaces (not objects): colour and texture pattern used by the renderer.
STRUCTURE_COLORS = {
    "Floor": (0.55, 0.42, 0.3),
    "Wall": (0.86, 0.83, 0.76),
    "Ceiling": (0.93, 0.93, 0.93),
    "Agent": (0.15, 0.35, 0.95),
}
