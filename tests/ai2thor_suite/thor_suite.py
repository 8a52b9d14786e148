"""Helpers of the ported AI2-THOR tests: the genuine ai2thor 5.0.0 client on ``thorgym-thor``.

Upstream (``ai2thor/tests/test_unity.py``) builds one controller per server type at import
time, restores its original initialization parameters and resets the test scene before every
test, and lets a test that leaves the scene untouched skip the next reset. These helpers (and
the fixtures in conftest.py) do the same with one client per test module. Nothing is
skipped: a missing client package or executable is a failure that says what to install.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

#: Upstream's test scene, FloorPlan28 (a kitchen; thorgym's is a kitchen too), by the name the
#: client loads and the metadata reports (the client adds the ``_physics`` suffix).
TEST_SCENE = "FloorPlan28_physics"
DATA = Path(__file__).parent / "data"


def _executable() -> str:
    found = shutil.which("thorgym-thor")
    if found:
        return found
    candidate = Path(sys.executable).parent / "thorgym-thor"
    if not candidate.is_file():
        pytest.fail(
            f"thorgym-thor is not installed (not on PATH, not at {candidate}); run `pip install -e .`"
        )
    return str(candidate)


def build_controller(home: Path, **kwargs: Any) -> Any:
    """The genuine client started on thorgym-thor (HOME redirected: its log lives there)."""
    try:
        from ai2thor.controller import Controller
    except ImportError:
        pytest.fail("the ai2thor client package is required: pip install 'thorgym[ai2thor]'")
    saved = {k: os.environ.get(k) for k in ("HOME", "CUDA_VISIBLE_DEVICES")}
    os.environ["HOME"] = str(home)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # else the client runs vulkaninfo
    try:
        c = Controller(
            local_executable_path=_executable(),
            x_display=":0",
            scene=TEST_SCENE,
            server_timeout=120.0,
            server_start_timeout=120.0,
            **kwargs,
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # used for resetting, as upstream does
    c._original_initialization_parameters = copy.deepcopy(c.initialization_parameters)
    c._original_size = (c.width, c.height)
    return c


def skip_reset(controller: Any) -> None:
    """Mark the last event: the scene is untouched, the next test need not reset it."""
    controller.last_event._pytest_skip_reset = True


def reset_controller(controller: Any) -> Any:
    """Upstream's reset between tests: original parameters back, the test scene reloaded.

    Unlike upstream, the original resolution is restored too (the client keeps a resolution
    set by ``reset(width=…)`` outside its initialization parameters, so upstream's tests
    depend on their order there)."""
    controller.initialization_parameters = copy.deepcopy(controller._original_initialization_parameters)
    width, height = controller._original_size
    if not hasattr(controller.last_event, "_pytest_skip_reset") or (
        controller.last_event.screen_width,
        controller.last_event.screen_height,
    ) != (width, height):
        controller.reset(TEST_SCENE, width=width, height=height)
        skip_reset(controller)
    return controller
