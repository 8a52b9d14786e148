"""Helpers of the ObjectNav environment tests: small frames and small (bathroom) scenes."""

from __future__ import annotations

from typing import Any

import numpy as np

from thorgym.tasks import objectnav as on

# 64×64 frames: the simulator decides visibility on a 64-row raster, so one render serves both.
SMALL: dict[str, Any] = {"scenes": ["FloorPlan401", "FloorPlan402"], "width": 64, "height": 64}


def oracle_action(env: Any) -> int:
    """The next action of a shortest path to seeing the target (Done when it is seen)."""
    base = env.unwrapped
    graph = base.backend.pose_graph(base.episode.scene)
    x, z, rot, hor = base.path[-1]
    pose = graph.pose(x, z, rot, hor)
    dist = graph.distances(base.episode.target)
    if dist[pose] == 0:
        return on.DONE
    for a in range(on.NUM_MOVES):
        if dist[graph.next_pose[pose, a]] == dist[pose] - 1:
            return a
    raise AssertionError("no action shortens the path")


def random_actions(n: int, seed: int = 0, done_prob: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    acts = rng.integers(0, 5, size=n)
    acts[rng.random(n) < done_prob] = on.DONE
    return acts
