"""Scene models and shortest-path experts for the two-agent furniture tasks (FurnLift, FurnMove).

Both tasks are planned on the built-in simulator's model of a scene (``thorgym.sim``): the
reachable grid, collisions and AI2-THOR's visibility rule are the simulator's own, so an expert
plan replays exactly on the ``sim`` backend and on ``thorgym-thor`` through the genuine client.

- :class:`LiftPlanner` (FurnLift): the pose graph (grid position × 4 headings) with the Television
  on the floor, the poses from which it is visible within the task's distance, and a pair of such
  poses at least 8 grid steps apart (Manhattan) that the two agents reach soonest. Each agent's
  expert walks its shortest path there; both Pickup once both have arrived.
- :class:`MovePlanner` (FurnMove): a breadth-first search over the lifted Television's position
  and facing when the agents carry it together (their formation fixed), towards the goal.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch

from thorgym.sim import BatchedSimulator
from thorgym.sim.batch import BOX_FREE, object_box_blockers
from thorgym.sim.layout import AGENT_RADIUS
from thorgym.sim.poses import object_visible_per_pose

GRID = 0.25
HEADINGS = 4  # 90° turns: heading r faces yaw 90·r
_DIRS = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])  # (dx, dz) of yaw 0, 90, 180, 270
_COLLIDE_R2 = (AGENT_RADIUS - 1e-3) ** 2
UNREACHED = np.iinfo(np.int32).max


def heading_of(yaw: float) -> int:
    return int(round(float(yaw) / 90.0)) % HEADINGS


def direction(heading: int) -> np.ndarray:
    """(dx, dz) of one grid step along a heading (0 = +z, 1 = +x, 2 = −z, 3 = −x)."""
    return _DIRS[heading % HEADINGS] * GRID


def grid_key(x: float, z: float) -> tuple[int, int]:
    return (round(float(x) / GRID * 4), round(float(z) / GRID * 4))


def probe_simulator(scene: str) -> BatchedSimulator:
    """A one-world simulator without frames, for queries (reachability, object placement)."""
    return BatchedSimulator(
        [scene], width=32, height=32, rotate_step_degrees=90.0, render_depth=False,
        render_instance_segmentation=False, render_rgb=False,
    )  # fmt: skip


def object_index(sim: BatchedSimulator, object_id: str) -> int:
    return sim.worlds[0].index[object_id]


@functools.lru_cache(maxsize=64)
def scene_positions(scene: str) -> np.ndarray:
    """(P, 2) reachable grid positions of a scene's initial state, sorted (cached)."""
    return np.asarray(sorted(probe_simulator(scene).reachable_positions(0)), dtype=np.float64)


class GridGraph:
    """Positions (P, 2) on the grid and their 4-neighbours along each heading (−1: none)."""

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        self.index = {grid_key(x, z): k for k, (x, z) in enumerate(self.positions)}
        p = len(self.positions)
        self.ahead = np.full((p, HEADINGS), -1, dtype=np.int64)
        for k, (x, z) in enumerate(self.positions):
            for h in range(HEADINGS):
                dx, dz = direction(h)
                self.ahead[k, h] = self.index.get(grid_key(x + dx, z + dz), -1)

    def node(self, x: float, z: float, yaw: float) -> int:
        """Pose-graph node (position index · 4 + heading) of a pose, −1 when off the grid."""
        k = self.index.get(grid_key(x, z), -1)
        return -1 if k < 0 else k * HEADINGS + heading_of(yaw)

    def successors(self, node: int) -> tuple[int, int, int]:
        """Nodes after MoveAhead, RotateLeft, RotateRight (MoveAhead blocked: the node itself)."""
        k, h = divmod(node, HEADINGS)
        nxt = self.ahead[k, h]
        ahead = node if nxt < 0 else int(nxt) * HEADINGS + h
        return ahead, k * HEADINGS + (h - 1) % HEADINGS, k * HEADINGS + (h + 1) % HEADINGS

    def distances_from(self, start: int) -> np.ndarray:
        """Steps (MoveAhead / RotateLeft / RotateRight) from `start` to every node."""
        dist = np.full(len(self.positions) * HEADINGS, UNREACHED, dtype=np.int64)
        if start < 0:
            return dist
        dist[start] = 0
        dq = deque([start])
        while dq:
            u = dq.popleft()
            for v in self.successors(u):
                if dist[v] == UNREACHED:
                    dist[v] = dist[u] + 1
                    dq.append(v)
        return dist

    def distances_to(self, target: int) -> np.ndarray:
        """Steps from every node to `target` (the moves reversed: a grid step back, turns)."""
        n = len(self.positions) * HEADINGS
        dist = np.full(n, UNREACHED, dtype=np.int64)
        dist[target] = 0
        dq = deque([target])
        while dq:
            v = dq.popleft()
            k, h = divmod(v, HEADINGS)
            preds = [k * HEADINGS + (h + 1) % HEADINGS, k * HEADINGS + (h - 1) % HEADINGS]
            back = self.ahead[k, (h + 2) % HEADINGS]  # the position one step behind, if any
            if back >= 0 and self.ahead[back, h] == k:
                preds.append(int(back) * HEADINGS + h)
            for u in preds:
                if dist[u] == UNREACHED:
                    dist[u] = dist[v] + 1
                    dq.append(u)
        return dist


class LiftPlanner:
    """FurnLift's scene model for one episode: the Television on the floor at (x, z, facing).

    Args:
        scene: a living room; tv: (x, z, facing) of the Television standing on the floor.
        visibility_distance, field_of_view: the task's visibility rule.
        min_apart: the pickup needs the agents at least this many grid steps apart (Manhattan).
    """

    def __init__(
        self,
        scene: str,
        tv: tuple[float, float, int],
        *,
        tv_id: str,
        visibility_distance: float,
        field_of_view: float,
        min_apart: int,
        tv_height: float,
    ) -> None:
        sim = probe_simulator(scene)
        self.ok = bool(place_on_floor(sim, tv_id, tv, tv_height))
        self.graph = GridGraph(np.asarray(sim.reachable_positions(0), dtype=np.float64) if self.ok else [])
        self.min_apart = min_apart
        pos = self.graph.positions
        c = len(pos)
        good = np.zeros((c, HEADINGS), dtype=bool)
        if self.ok and c:
            # All headings in one call: rows are position-major, as the pose-graph nodes.
            seen = object_visible_per_pose(
                sim.worlds[0], np.repeat(pos, HEADINGS, axis=0), np.tile(90.0 * np.arange(HEADINGS), c),
                np.zeros(c * HEADINGS), tv_id, field_of_view=field_of_view,
                visibility_distance=visibility_distance,
            )  # fmt: skip
            good = seen.reshape(c, HEADINGS)
        self.good_nodes = np.nonzero(good.reshape(-1))[0]

    def choose_targets(self, starts: Sequence[int]) -> tuple[int, int, int] | None:
        """The pair of pickup poses (node0, node1), min_apart apart, that the agents starting at
        `starts` reach soonest (the later arrival, then the sum); with that time. None: none."""
        g = self.good_nodes
        if len(g) == 0 or min(starts) < 0:
            return None
        d0 = self.graph.distances_from(starts[0])[g]
        d1 = self.graph.distances_from(starts[1])[g]
        xy = self.graph.positions[g // HEADINGS]
        steps = np.abs(xy[:, None, :] - xy[None, :, :]).sum(-1) / GRID
        ok = (steps >= self.min_apart - 1e-6) & (d0[:, None] < UNREACHED) & (d1[None, :] < UNREACHED)
        if not ok.any():
            return None
        later = np.maximum(d0[:, None], d1[None, :]).astype(np.float64)
        cost = np.where(ok, later * 10_000 + d0[:, None] + d1[None, :], np.inf)
        a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
        return int(g[a]), int(g[b]), int(later[a, b])


def place_on_floor(
    sim: BatchedSimulator, object_id: str, pose: tuple[float, float, int], height: float
) -> bool:
    """TeleportObject of world 0's object to stand on the floor at (x, z, facing)."""
    x, z, facing = pose
    idx = object_index(sim, object_id)
    return bool(sim.teleport_object([0], [idx], [x], [height / 2], [z], facing=[int(facing)])[0])


class MovePlanner:
    """FurnMove's scene model: which (position, facing) the lifted Television can take with its
    carriers at fixed offsets from it, and the shortest group moves to the goal.

    The Television's box is tested with the simulator's own rule (``thorgym.sim.batch.
    object_box_blockers``, what ``teleport_object`` / ``move_group`` apply); each carrier's
    position must be free of blocking boxes (radius AGENT_RADIUS) and inside the room.
    """

    def __init__(self, scene: str, tv_id: str, tv_size: np.ndarray, lift_height: float) -> None:
        sim = probe_simulator(scene)
        world = sim.worlds[0]
        boxes = world.boxes()
        tv_idx = world.index[tv_id]
        keep = boxes.blocks & boxes.active & (boxes.inst != tv_idx)
        self.lo = boxes.lo[keep].astype(np.float64)  # what blocks the carriers
        self.hi = boxes.hi[keep].astype(np.float64)
        self.world, self.tv_idx = world, tv_idx
        spec = world.spec
        self.bounds = spec.bounds
        self.cut = spec.cut
        self.size = np.asarray(tv_size, dtype=np.float64)
        self.lift_height = lift_height

    def tv_extent(self, facing: int) -> np.ndarray:
        s = self.size
        return s if facing % 2 == 0 else s[[2, 1, 0]]

    def _inside(self, xz: np.ndarray) -> np.ndarray:
        x0, z0, x1, z1 = self.bounds
        x, z = xz[:, 0], xz[:, 1]
        inside = (x > x0) & (x < x1) & (z > z0) & (z < z1)
        if self.cut is not None:
            inside &= ~((x > self.cut[0]) & (z > self.cut[1]))
        return inside

    def agents_free(self, xz: np.ndarray) -> np.ndarray:
        """(C,) bool: an agent could stand at each (x, z) (the lifted Television aside)."""
        xz = np.asarray(xz, dtype=np.float64).reshape(-1, 2)
        dx = np.clip(
            np.maximum(self.lo[None, :, 0] - xz[:, None, 0], xz[:, None, 0] - self.hi[None, :, 0]), 0, None
        )
        dz = np.clip(
            np.maximum(self.lo[None, :, 2] - xz[:, None, 1], xz[:, None, 1] - self.hi[None, :, 2]), 0, None
        )
        hit = (dx * dx + dz * dz < _COLLIDE_R2).any(1)
        return ~hit & self._inside(xz)

    def tv_fits(self, xz: np.ndarray, facing: int) -> np.ndarray:
        """(C,) bool: the lifted Television fits with its centre at each (x, z) and `facing`."""
        xz = np.asarray(xz, dtype=np.float64).reshape(-1, 2)
        half = self.tv_extent(facing) / 2
        c = np.stack([xz[:, 0], np.full(len(xz), self.lift_height), xz[:, 1]], -1)
        return object_box_blockers(self.world, self.tv_idx, c - half, c + half) == BOX_FREE

    def agent_clear_of_tv(self, agent_xz: np.ndarray, tv_xz: np.ndarray, facing: int) -> np.ndarray:
        """(C,) bool: an agent at agent_xz does not overlap the Television's footprint."""
        half = self.tv_extent(facing) / 2
        d = np.abs(np.asarray(agent_xz, dtype=np.float64) - np.asarray(tv_xz, dtype=np.float64))
        dx = np.clip(d[..., 0] - half[0], 0, None)
        dz = np.clip(d[..., 1] - half[2], 0, None)
        return dx * dx + dz * dz >= _COLLIDE_R2

    def plan(
        self,
        tv_xz: tuple[float, float],
        facing: int,
        offsets: np.ndarray,
        goal_xz: np.ndarray,
        goal_radius: float,
    ) -> dict[tuple[int, int, int], int]:
        """Steps to the goal from every state (grid cell of the Television, facing) reachable
        from the start with group moves and RotateLiftedObjectRight, carriers at `offsets` (2, 2)
        from the Television. Keys: (ix, iz, facing) in grid steps from `tv_xz`."""
        origin = np.asarray(tv_xz, dtype=np.float64)
        offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
        x0, z0, x1, z1 = self.bounds
        i0, i1 = int(np.floor((x0 - origin[0]) / GRID)), int(np.ceil((x1 - origin[0]) / GRID))
        j0, j1 = int(np.floor((z0 - origin[1]) / GRID)), int(np.ceil((z1 - origin[1]) / GRID))
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
        cells = np.stack([ii.reshape(-1), jj.reshape(-1)], -1)
        centers = origin + cells * GRID
        ok_agents = np.ones(len(cells), dtype=bool)
        for off in offsets:
            ok_agents &= self.agents_free(centers + off)
        valid = {}
        for f in range(HEADINGS):
            ok = ok_agents & self.tv_fits(centers, f)
            for off in offsets:
                ok &= self.agent_clear_of_tv(centers + off, centers, f)
            valid[f] = ok.reshape(ii.shape)
        at_goal = (np.abs(centers - np.asarray(goal_xz)).sum(-1) < goal_radius).reshape(ii.shape)
        if not any((valid[f] & at_goal).any() for f in range(HEADINGS)):
            return {}  # this formation cannot stand at the goal
        # Forward reachability from the start, then backward distances from the goal states.
        start = (0, 0, int(facing) % HEADINGS)

        def ok_state(s: tuple[int, int, int]) -> bool:
            i, j, f = s
            return i0 <= i <= i1 and j0 <= j <= j1 and bool(valid[f][i - i0, j - j0])

        def moves(s: tuple[int, int, int]) -> list[tuple[int, int, int]]:
            i, j, f = s
            out = []
            for d in range(4):  # group moves: ahead, right, back, left of the Television's facing
                dx, dz = _DIRS[(f + d) % HEADINGS]
                out.append((i + int(dx), j + int(dz), f))
            out.append((i, j, (f + 1) % HEADINGS))
            return [t for t in out if ok_state(t)]

        if not ok_state(start):
            return {}
        seen = {start}
        order = [start]
        k = 0
        while k < len(order):
            for t in moves(order[k]):
                if t not in seen:
                    seen.add(t)
                    order.append(t)
            k += 1
        preds: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {s: [] for s in seen}
        for s in seen:
            for t in moves(s):
                preds[t].append(s)
        goals = [s for s in seen if at_goal[s[0] - i0, s[1] - j0]]
        dist = {s: 0 for s in goals}
        dq = deque(goals)
        while dq:
            t = dq.popleft()
            for s in preds[t]:
                if s not in dist:
                    dist[s] = dist[t] + 1
                    dq.append(s)
        return dist


def to_tensor(values: Sequence[float]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))
