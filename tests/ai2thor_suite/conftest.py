"""Fixtures of the ported AI2-THOR tests: one genuine client per test module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from thor_suite import DATA, build_controller, reset_controller


@pytest.fixture(scope="module")
def _shared_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Per module, not per session: a thorgym-thor child left running would count as a leaked
    # process in tests that check for them (tests/reliability/test_soak.py).
    home = tmp_path_factory.mktemp("ai2thor_home")
    c = build_controller(home)
    yield c
    proc = c.server.unity_proc
    c.stop()
    if proc is not None:
        proc.wait(timeout=10)


@pytest.fixture
def fifo_controller(_shared_controller: Any) -> Any:
    """The shared client, reset to the test scene with its original settings."""
    return reset_controller(_shared_controller)


@pytest.fixture(scope="session")
def metadata_schema() -> dict[str, Any]:
    return json.loads((DATA / "metadata-schema.json").read_text())
