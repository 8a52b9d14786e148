"""Object states that only change metadata: toggled on/off and filled with a liquid.

AI2-THOR's ``ToggleObjectOn`` / ``ToggleObjectOff`` and ``FillObjectWithLiquid`` /
``EmptyLiquidFromObject`` for the object types that support them in AI2-THOR. thorgym.sim keeps
the state (``isToggled``, ``isFilledWithLiquid``, ``fillLiquid``) and reports it; nothing looks
different and nothing else reacts to it (a lamp gives no light, a filled cup weighs the same).
"""

from __future__ import annotations

__all__ = ["LIQUIDS", "TOGGLEABLE", "FILLABLE", "fill", "toggle"]

#: Types AI2-THOR lets ToggleObjectOn / ToggleObjectOff act on (of thorgym.sim's types).
TOGGLEABLE = frozenset(
    {
        "LightSwitch",
        "Television",
        "Microwave",
        "Toaster",
        "CoffeeMaker",
        "FloorLamp",
        "Lamp",
        "Laptop",
        "CellPhone",
        "Candle",
    }
)
#: Types AI2-THOR can fill with a liquid (of thorgym.sim's types).
FILLABLE = frozenset({"Bowl", "Cup", "Mug", "Pot", "Kettle", "HousePlant"})
#: AI2-THOR's liquids.
LIQUIDS = ("water", "coffee", "wine")


def toggle(state: dict[str, bool], object_id: str, object_type: str, on: bool) -> str | None:
    """Switch an object on or off in `state` (objectId -> on); an error message or None."""
    if object_type not in TOGGLEABLE:
        return f"{object_id} is not toggleable"
    if state.get(object_id, False) == on:
        word = "on" if on else "off"
        return f"can't toggle object {word} if it's already {word}!"
    state[object_id] = on
    return None


def fill(state: dict[str, str], object_id: str, object_type: str, liquid: str | None) -> str | None:
    """Fill an object with `liquid`, or empty it (None), in `state` (objectId -> liquid)."""
    if object_type not in FILLABLE:
        return f"{object_id} cannot be filled with liquid"
    if liquid is None:
        if object_id not in state:
            return f"{object_id} is already empty"
        del state[object_id]
        return None
    if liquid not in LIQUIDS:
        raise ValueError(f"FillObjectWithLiquid: fillLiquid must be one of {list(LIQUIDS)}, got {liquid!r}")
    if object_id in state:
        return f"{object_id} is already filled with {state[object_id]}"
    state[object_id] = liquid
    return None
