"""AI2-THOR's metadata schema holds on every step of a random walk, in every kind of room.

Upstream validates one ``Pass`` event of FloorPlan28 (``test_jsonschema_metadata``); here every
event of a seeded random walk through the genuine client is validated, in one scene per room
type, with interactions mixed in so that open receptacles, held objects and failed actions
(whose errorCode must stay null) are covered too.
"""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

NAV = ["MoveAhead", "MoveBack", "MoveLeft", "MoveRight", "RotateLeft", "RotateRight", "LookUp", "LookDown"]
STEPS = 30


def _interaction(rng: random.Random, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if meta["inventoryObjects"]:
        return ("DropHandObject", {}) if rng.random() < 0.5 else ("Pass", {})
    visible = [o for o in meta["objects"] if o["visible"]]
    openable = [o for o in visible if o["openable"]]
    pickupable = [o for o in visible if o["pickupable"]]
    if openable and rng.random() < 0.5:
        o = rng.choice(openable)
        if o["isOpen"]:
            return "CloseObject", {"objectId": o["objectId"]}
        return "OpenObject", {"objectId": o["objectId"], "openness": rng.choice([0.5, 1.0])}
    if pickupable:
        return "PickupObject", {"objectId": rng.choice(pickupable)["objectId"]}
    return "Pass", {}


@pytest.mark.parametrize("scene", ["FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401"])
def test_schema_holds_on_a_random_walk(fifo_controller, metadata_schema, scene):
    rng = random.Random(scene)
    event = fifo_controller.reset(scene)
    validator = jsonschema.Draft7Validator(metadata_schema)
    seen_actions = set()
    for step in range(STEPS + 1):
        errors = sorted(validator.iter_errors(event.metadata), key=str)
        assert not errors, f"{scene} step {step} ({event.metadata['lastAction']}): {errors[0].message}"
        if rng.random() < 0.3:
            action, kwargs = _interaction(rng, event.metadata)
        else:
            action, kwargs = rng.choice(NAV), {}
        event = fifo_controller.step(action, **kwargs)
        seen_actions.add((action, event.metadata["lastActionSuccess"]))
    assert len(seen_actions) >= 6, f"the walk should mix actions and outcomes, got {sorted(seen_actions)}"
