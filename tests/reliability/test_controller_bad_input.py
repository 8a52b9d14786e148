"""Bad input at thorgym.sim.Controller: every action × every argument × malformed values.

Each call must either raise ValueError (a bad argument, as AI2-THOR's client reports it) or fail the
action with ``lastActionSuccess=False`` and leave the world unchanged. Nothing may hang or raise
anything else. Non-finite numbers never succeed. (#16's sweep, first part.)
"""

from __future__ import annotations

import json
import math

import pytest

from thorgym.sim import Controller
from thorgym.sim.controller import ACTION_ARGS

BAD = [float("nan"), float("inf"), -float("inf"), 1e308, -1, 0, 10**20, "x", None, [], {}, True]


def _state(c: Controller) -> str:
    m = c.last_event.metadata
    objs = [(o["objectId"], o["position"], o["isOpen"], o["isPickedUp"]) for o in m["objects"]]
    return json.dumps([m["agent"], objs, m["screenWidth"], m["screenHeight"]], sort_keys=True, default=str)


@pytest.mark.parametrize("action", sorted(a for a in ACTION_ARGS if ACTION_ARGS[a]))
def test_malformed_arguments_raise_or_fail_cleanly(action):
    c = Controller(scene="FloorPlan1", width=48, height=48)
    start = _state(c)
    for arg in ACTION_ARGS[action]:
        for v in BAD:
            before = _state(c)
            try:
                ev = c.step(action, **{arg: v})
            except ValueError as e:
                assert str(e), (action, arg, v)
                assert _state(c) == before, f"{action}({arg}={v!r}) raised but changed the world"
                continue
            ok = ev.metadata["lastActionSuccess"]
            if isinstance(v, float) and not math.isfinite(v):
                assert not ok, f"{action}({arg}={v!r}) succeeded with a non-finite number"
            if not ok:
                assert ev.metadata["errorMessage"], (action, arg, v)
                assert _state(c) == before, f"{action}({arg}={v!r}) failed but changed the world"
            elif _state(c) != start:
                c.reset("FloorPlan1", width=48, height=48)  # a legal change: start the next case afresh
                start = _state(c)


def test_huge_move_magnitude_fails_fast_instead_of_hanging():
    c = Controller(scene="FloorPlan1", width=48, height=48)
    ev = c.step("MoveAhead", moveMagnitude=1e20)
    assert not ev.metadata["lastActionSuccess"] and "blocking" in ev.metadata["errorMessage"]
    with pytest.raises(ValueError, match="must be positive and finite"):
        c.step("MoveAhead", moveMagnitude=float("inf"))
    with pytest.raises(ValueError, match="finite"):
        c.step("Teleport", position={"x": 0.0, "y": 0.9, "z": float("nan")})
