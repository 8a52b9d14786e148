import pytest

from thorgym.sim import Controller


@pytest.fixture
def kitchen():
    with Controller(
        scene="FloorPlan1",
        width=96,
        height=96,
        renderDepthImage=True,
        renderInstanceSegmentation=True,
    ) as c:
        yield c
