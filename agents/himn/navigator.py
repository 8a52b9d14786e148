"""HIMN's low-level navigator: shortest paths on the known free space of the semantic map.

The planner names a goal cell in the agent's frame (25 goals: lateral offset ``i % 5 − 2``,
``i // 5 + 1`` cells ahead); the navigator plans a 4-connected shortest path over the cells the
map knows to be free (free space or visited) and turns it into primitive actions (rotations of
90° and MoveAhead), at most :data:`MAX_PRIMITIVES` of them. A goal that no such path reaches is
invalid (masked for the planner).

Map cells follow :mod:`thorgym.agents.himn.semantic_map`: rows along +z, columns along +x; the
agent at yaw 0 faces +z (row + 1), at yaw 90 faces +x (column + 1).
"""

from __future__ import annotations

import numpy as np

MAX_PRIMITIVES = 20
NUM_GOALS = 25
GOAL_OFFSETS: tuple[tuple[int, int], ...] = tuple(
    (i % 5 - 2, i // 5 + 1) for i in range(NUM_GOALS)
)  # (right, ahead)
# (row, col) step of facing yaw 0, 90, 180, 270
_FORWARD = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # index = heading k (yaw 90k)


def heading(yaw: float) -> int:
    """Heading index 0–3 of a yaw in degrees (multiples of 90°)."""
    return int(round(float(yaw) / 90.0)) % 4


def cell_ahead(cell: tuple[int, int], yaw: float) -> tuple[int, int]:
    """The (row, col) one cell ahead of an agent at ``cell`` facing ``yaw``."""
    dr, dc = _FORWARD[heading(yaw)]
    return cell[0] + dr, cell[1] + dc


def goal_cells(cell: tuple[int, int], yaw: float) -> np.ndarray:
    """(25, 2) (row, col) of the planner's goals for an agent at ``cell`` facing ``yaw``."""
    k = heading(yaw)
    fr, fc = _FORWARD[k]
    rr, rc = _FORWARD[(k + 1) % 4]  # the agent's right is the next heading clockwise
    off = np.array(GOAL_OFFSETS)
    return np.stack(
        [cell[0] + off[:, 1] * fr + off[:, 0] * rr, cell[1] + off[:, 1] * fc + off[:, 0] * rc], -1
    )


def distances(free: np.ndarray, start: tuple[int, int], max_steps: int = MAX_PRIMITIVES) -> np.ndarray:
    """(H, W) BFS step counts over 4-connected free cells from ``start`` (−1: not within
    ``max_steps``); the start cell counts as free."""
    h, w = free.shape
    dist = np.full((h, w), -1, dtype=np.int64)
    if not (0 <= start[0] < h and 0 <= start[1] < w):
        return dist
    ok = free.astype(bool).copy()
    ok[start] = True
    frontier = np.zeros((h, w), dtype=bool)
    frontier[start] = True
    dist[start] = 0
    for step in range(1, max_steps + 1):
        grown = np.zeros_like(frontier)
        grown[1:] |= frontier[:-1]
        grown[:-1] |= frontier[1:]
        grown[:, 1:] |= frontier[:, :-1]
        grown[:, :-1] |= frontier[:, 1:]
        frontier = grown & ok & (dist < 0)
        if not frontier.any():
            break
        dist[frontier] = step
    return dist


def path_actions(dist: np.ndarray, goal: tuple[int, int], yaw: float) -> list[str]:
    """Primitive actions (``RotateLeft``/``RotateRight``/``MoveAhead``) along a shortest path
    from the BFS start to ``goal``, truncated to :data:`MAX_PRIMITIVES`; [] if unreachable."""
    h, w = dist.shape
    if not (0 <= goal[0] < h and 0 <= goal[1] < w) or dist[goal] <= 0:
        return []
    cells = [goal]
    r, c = goal
    while dist[r, c] > 0:  # walk back down the distance field
        for dr, dc in _STEPS:
            pr, pc = r - dr, c - dc
            if 0 <= pr < h and 0 <= pc < w and dist[pr, pc] == dist[r, c] - 1:
                r, c = pr, pc
                break
        cells.append((r, c))
    cells.reverse()
    actions: list[str] = []
    k = heading(yaw)
    for (r0, c0), (r1, c1) in zip(cells[:-1], cells[1:], strict=True):
        want = _STEPS.index((r1 - r0, c1 - c0))
        turn = (want - k) % 4
        actions += {0: [], 1: ["RotateRight"], 2: ["RotateRight", "RotateRight"], 3: ["RotateLeft"]}[turn]
        actions.append("MoveAhead")
        k = want
    return actions[:MAX_PRIMITIVES]


def plan(free: np.ndarray, cell: tuple[int, int], yaw: float) -> list[list[str]]:
    """Primitive plans of the 25 goals ([] where a goal is unreachable within the budget)."""
    dist = distances(free, cell)
    return [path_actions(dist, (int(g[0]), int(g[1])), yaw) for g in goal_cells(cell, yaw)]
