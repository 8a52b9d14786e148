"""thorgym.sim.poses: MoveAhead tables and visibility from poses equal the simulator's answers."""

import numpy as np
import pytest
import torch

from thorgym.sim import BatchedSimulator
from thorgym.sim.batch import NAV_INDEX
from thorgym.sim.poses import DEFAULT_HEADINGS, move_table, visible_from_poses


def test_move_table_matches_step_nav():
    positions, move_to = move_table("FloorPlan402")
    assert positions.shape[1] == 2 and move_to.shape == (len(positions), len(DEFAULT_HEADINGS))
    assert move_to.min() >= 0 and move_to.max() < len(positions)
    # Closed under MoveAhead, and some moves are blocked (stay) while others move.
    stay = move_to == np.arange(len(positions))[:, None]
    assert stay.any() and (~stay).any()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(positions), size=12, replace=False)
    sim = BatchedSimulator(["FloorPlan402"] * len(pick), width=32, height=32, render_rgb=False)
    for h, yaw in enumerate(DEFAULT_HEADINGS):
        ok = sim.teleport(range(len(pick)), positions[pick, 0], positions[pick, 1], [yaw] * len(pick))
        assert ok.all()
        sim.step_nav(torch.full((len(pick),), NAV_INDEX["MoveAhead"]))
        got = sim.agent_poses()[:, :2].numpy()
        np.testing.assert_allclose(got, positions[move_to[pick, h]], atol=1e-4)


def test_move_table_headings_and_grid():
    positions, move_to = move_table("FloorPlan402", grid_size=0.5, headings=(0, 90, 180, 270))
    assert move_to.shape == (len(positions), 4)
    steps = np.abs(positions[move_to] - positions[:, None, :]).max(-1)
    assert set(np.round(steps, 4).ravel()) <= {0.0, 0.5}
    with pytest.raises(ValueError, match="headings"):
        move_table("FloorPlan402", headings=())


@pytest.mark.parametrize(
    ("scene", "width", "height", "distance"),
    [("FloorPlan1", 64, 64, 1.5), ("FloorPlan215", 96, 64, 1.5), ("FloorPlan427", 64, 64, 1.0)],
)
def test_visible_from_poses_equals_the_simulator(scene, width, height, distance):
    sim = BatchedSimulator(
        [scene], width=width, height=height, render_rgb=False, visibility_distance=distance
    )
    reachable = np.asarray(sim.reachable_positions(0))
    rng = np.random.default_rng(1)
    n = 60
    positions = reachable[rng.integers(0, len(reachable), n)]
    yaws = rng.choice([0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0, 10.0, 200.5], n)
    horizons = rng.choice([-30.0, 0.0, 30.0, 60.0], n)
    objs = sim.worlds[0].objects
    types = sorted({o.object_type for o in objs})
    got = visible_from_poses(
        scene, positions, yaws, horizons, types, visibility_distance=distance, aspect=width / height
    )
    expect = {t: np.zeros(n, dtype=bool) for t in types}
    for c in range(n):
        assert sim.teleport(
            [0], positions[c, :1], positions[c, 1:], yaws[c : c + 1], horizons[c : c + 1]
        ).item()
        vis = sim.visible()[0, 0].numpy()
        for k, o in enumerate(objs):
            expect[o.object_type][c] |= bool(vis[k])
    for t in types:
        np.testing.assert_array_equal(got[t], expect[t], err_msg=t)
    assert sum(int(v.sum()) for v in got.values()) > 0


def test_visible_from_poses_checks_shapes_and_unknown_types():
    with pytest.raises(ValueError, match="one value per pose"):
        visible_from_poses("FloorPlan1", np.zeros((3, 2)), np.zeros(2), np.zeros(3), ["Fridge"])
    out = visible_from_poses("FloorPlan1", np.zeros((3, 2)), np.zeros(3), np.zeros(3), ["NoSuchType"])
    assert out["NoSuchType"].shape == (3,) and not out["NoSuchType"].any()
