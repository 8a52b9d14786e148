"""Worlds of several agents each: the batched backend interface of multi-agent tasks.

A multi-agent task (``thorgym.tasks.furniture``) is bound to one of these and drives all agents of
all worlds through it; :func:`thorgym.envs.worlds.build_worlds` makes one from a task's
:class:`~thorgym.tasks.base.WorldsSpec` with ``agents`` > 1.

- ``num_worlds``, ``agent_count``; ``load(i, scene)``; ``object_ids(i, type)``;
  ``place_object(i, id, x, y, z, facing, force=False) -> (ok, message)``;
  ``place_agent(i, agent, x, z, rotation, force=False) -> (ok, message)``;
  ``move(nav (N, A)) -> (N, A) bool`` (``thorgym.sim.NAV_ACTIONS`` indices, −1 nothing);
  ``move_group(worlds, object_ids, dx, dz) -> (K,) bool``; ``poses() -> (N, A, 4)``;
  ``object_poses(ids) -> (N, 4)`` [x, y, z, facing]; ``visible(ids) -> (N, A) bool``;
  ``sensors(names) -> dict of (N, A, …)``; ``layout(i)``; ``close()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from thorgym.sim.scenes import parse_scene
from thorgym.tasks.base import WorldsSpec

__all__ = ["MultiAgentControllerWorlds", "MultiAgentSimWorlds"]


class MultiAgentSimWorlds:
    """N worlds of A agents each on one :class:`thorgym.sim.BatchedSimulator` (one render per step
    for all agents of all worlds), with the simulator's object placement (``teleport_object``)
    and group moves (``move_group``: all agents and an object, all or nothing).

    Args:
        num_worlds: N; spec: the task's :class:`~thorgym.tasks.base.WorldsSpec` (start scene,
            frame size per agent, sensors, the simulator's settings, ``agents`` = A,
            ``agents_visible``: draw each agent in the others' views, AI2-THOR's
            ``makeAgentsVisible``); device: torch device of the simulator.
    """

    def __init__(self, num_worlds: int, spec: WorldsSpec, *, device: str = "cpu") -> None:
        from thorgym.sim import BatchedSimulator

        depth = "depth" in spec.sensors
        self.sim = BatchedSimulator(
            [spec.scene] * num_worlds,
            width=spec.width,
            height=spec.height,
            agent_count=spec.agents,
            grid_size=spec.grid_size,
            rotate_step_degrees=spec.rotate_step_degrees,
            visibility_distance=spec.visibility_distance,
            field_of_view=spec.field_of_view,
            render_depth=depth,
            render_instance_segmentation=False,
            device=device,
            agents_visible=spec.agents_visible,
        )
        self.num_worlds = num_worlds
        self.agent_count = spec.agents
        self.depth = depth

    def load(self, i: int, scene: str) -> None:
        self.sim.reset_world(i, parse_scene(scene)[0])

    def object_ids(self, i: int, object_type: str) -> list[str]:
        return [o.object_id for o in self.sim.worlds[i].objects if o.object_type == object_type]

    def _index(self, i: int, object_id: str) -> int:
        return self.sim.worlds[i].index[object_id]

    def place_object(
        self, i: int, object_id: str, x: float, y: float, z: float, facing: int, force: bool = False
    ) -> tuple[bool, str]:
        idx = [self._index(i, object_id)]
        ok = bool(self.sim.teleport_object([i], idx, [x], [y], [z], facing=[int(facing)], check=not force)[0])
        return (
            ok,
            "" if ok else f"{object_id} does not fit at ({x:g}, {y:g}, {z:g}) facing {int(facing) * 90}°",
        )

    def place_agent(
        self, i: int, agent: int, x: float, z: float, rotation: float, force: bool = False
    ) -> tuple[bool, str]:
        rot = [float(rotation) % 360.0]
        ok = bool(self.sim.teleport([i], [x], [z], rot, [0.0], agent=agent, check=not force)[0])
        return ok, "" if ok else f"({x:g}, {z:g}) is not free for agent {agent}"

    def move(self, nav: np.ndarray) -> np.ndarray:
        import torch

        return self.sim.step_nav(torch.as_tensor(np.asarray(nav, dtype=np.int64))).cpu().numpy()

    def move_group(
        self, worlds: Sequence[int], object_ids: Sequence[str], dx: Sequence[float], dz: Sequence[float]
    ) -> np.ndarray:
        idx = [self._index(i, o) for i, o in zip(worlds, object_ids, strict=True)]
        agents = tuple(range(self.agent_count))
        return self.sim.move_group(list(worlds), agents, idx, list(dx), list(dz)).cpu().numpy()

    def poses(self) -> np.ndarray:
        poses = [self.sim.agent_poses(a).cpu().numpy() for a in range(self.agent_count)]
        return np.stack(poses, 1).astype(np.float64)

    def object_poses_by_id(self, i: int, object_id: str) -> np.ndarray:
        o = self.sim.worlds[i].object(object_id)
        return np.array([*(float(v) for v in o.center), float(o.facing)])

    def object_poses(self, object_ids: Sequence[str]) -> np.ndarray:
        return np.stack([self.object_poses_by_id(i, o) for i, o in enumerate(object_ids)])

    def visible(self, object_ids: Sequence[str]) -> np.ndarray:
        # One render gives the frames and the visibility (observe() reuses it for the sensors).
        vis = self.sim.observe().visible.cpu().numpy()  # (N, A, O)
        out = np.zeros((self.num_worlds, self.agent_count), dtype=bool)
        for i, oid in enumerate(object_ids):
            k = self.sim.worlds[i].index.get(oid)
            if k is not None and k < vis.shape[2]:
                out[i] = vis[i, :, k]
        return out

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.sim.observe()
        frames = {"rgb": out.rgb.cpu().numpy()}
        if out.depth is not None:
            frames["depth"] = out.depth.cpu().numpy()
        return frames

    def layout(self, i: int) -> dict[str, Any]:
        from .backends import sim_layout

        return sim_layout(self.sim.worlds[i])

    def close(self) -> None:
        self.sim = None


class MultiAgentControllerWorlds:
    """One world of A agents behind an AI2-THOR controller started with ``agentCount=A`` — the
    genuine ``ai2thor`` client (pointed at AI2-THOR or at ``thorgym-thor``) or
    :class:`thorgym.sim.Controller`. Group moves are ``Teleport`` of the agents and
    ``TeleportObject`` of the object, checked first and undone on a failure. ``agent_count`` is
    the controller's ``agentCount``; ``scene`` the one it started in (for ``layout`` before the
    first ``load``)."""

    num_worlds = 1

    def __init__(self, controller: Any, agent_count: int = 2, scene: str = "FloorPlan201") -> None:
        self.controller = controller
        self.agent_count = int(agent_count)
        self.events: list[Any] = []
        self._last: Any = None
        self.scene: str | None = None
        self._start_scene = scene

    def _step(self, action: str, agent: int = 0, **kw: Any) -> Any:
        ev = self.controller.step(action=action, agentId=agent, **kw)
        self._last = ev
        self.events = list(ev.events)
        return ev.events[agent]

    def _meta(self, agent: int = 0) -> dict[str, Any]:
        return self.events[agent].metadata

    def load(self, i: int, scene: str) -> None:
        ev = self.controller.reset(scene=parse_scene(scene)[0])
        self._last = ev
        self.events = list(ev.events)
        self.scene = parse_scene(scene)[0]

    def object_ids(self, i: int, object_type: str) -> list[str]:
        return [o["objectId"] for o in self._meta()["objects"] if o["objectType"] == object_type]

    def place_object(
        self, i: int, object_id: str, x: float, y: float, z: float, facing: int, force: bool = False
    ) -> tuple[bool, str]:
        e = self._step(
            "TeleportObject",
            objectId=object_id,
            position={"x": x, "y": y, "z": z},
            rotation={"x": 0, "y": 90 * int(facing), "z": 0},
            forceAction=force,
        )
        return bool(e.metadata["lastActionSuccess"]), str(e.metadata.get("errorMessage") or "")

    def place_agent(
        self, i: int, agent: int, x: float, z: float, rotation: float, force: bool = False
    ) -> tuple[bool, str]:
        y = self._meta(agent)["agent"]["position"]["y"]
        e = self._step(
            "Teleport", agent=agent, position={"x": x, "y": y, "z": z},
            rotation={"x": 0, "y": float(rotation) % 360.0, "z": 0}, horizon=0.0, forceAction=force,
        )  # fmt: skip
        return bool(e.metadata["lastActionSuccess"]), str(e.metadata.get("errorMessage") or "")

    def move(self, nav: np.ndarray) -> np.ndarray:
        from thorgym.sim.batch import NAV_ACTIONS

        acts = np.asarray(nav).reshape(-1)
        ok = np.ones((1, self.agent_count), dtype=bool)
        for a in range(self.agent_count):  # agents act in index order, as the batched simulator does
            if acts[a] >= 0:
                ok[0, a] = bool(self._step(NAV_ACTIONS[int(acts[a])], agent=a).metadata["lastActionSuccess"])
        return ok

    def move_group(
        self, worlds: Sequence[int], object_ids: Sequence[str], dx: Sequence[float], dz: Sequence[float]
    ) -> np.ndarray:
        """All agents and the object one step together: the object first, then the agents (the
        one ahead first); anything refused puts everything back."""
        oid, ddx, ddz = object_ids[0], float(dx[0]), float(dz[0])
        obj = self.object_poses_by_id(0, oid)
        poses = self.poses()[0]
        along = poses[:, 0] * ddx + poses[:, 1] * ddz
        order = [int(a) for a in np.argsort(-along)]
        done: list[int] = []
        ok, _ = self.place_object(0, oid, obj[0] + ddx, obj[1], obj[2] + ddz, int(obj[3]))
        if ok:
            for a in order:
                if not self.place_agent(0, a, poses[a, 0] + ddx, poses[a, 1] + ddz, poses[a, 2])[0]:
                    ok = False
                    break
                done.append(a)
        if not ok:
            for a in reversed(done):
                self.place_agent(0, a, poses[a, 0], poses[a, 1], poses[a, 2])
            self.place_object(0, oid, obj[0], obj[1], obj[2], int(obj[3]))
        return np.array([ok])

    def poses(self) -> np.ndarray:
        out = np.zeros((1, self.agent_count, 4))
        for a in range(self.agent_count):
            ag = self._meta(a)["agent"]
            out[0, a] = [ag["position"]["x"], ag["position"]["z"], ag["rotation"]["y"], ag["cameraHorizon"]]
        return out

    def object_poses_by_id(self, i: int, object_id: str) -> np.ndarray:
        o = next(o for o in self._meta()["objects"] if o["objectId"] == object_id)
        c = o["axisAlignedBoundingBox"]["center"]
        return np.array([c["x"], c["y"], c["z"], round(o["rotation"]["y"] / 90.0) % 4], dtype=np.float64)

    def object_poses(self, object_ids: Sequence[str]) -> np.ndarray:
        return self.object_poses_by_id(0, object_ids[0])[None]

    def visible(self, object_ids: Sequence[str]) -> np.ndarray:
        out = np.zeros((1, self.agent_count), dtype=bool)
        for a in range(self.agent_count):
            out[0, a] = any(o["objectId"] == object_ids[0] and o["visible"] for o in self._meta(a)["objects"])
        return out

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        frames = {"rgb": np.stack([np.asarray(e.frame, dtype=np.uint8) for e in self.events])[None]}
        if "depth" in names:
            frames["depth"] = np.stack([np.asarray(e.depth_frame, dtype=np.float32) for e in self.events])[
                None
            ]
        return frames

    def layout(self, i: int) -> dict[str, Any]:
        from thorgym.sim.batch import get_scene
        from thorgym.sim.world import World

        from .backends import sim_layout

        return sim_layout(World(get_scene(self.scene or self._start_scene), self.agent_count))

    def close(self) -> None:
        self.controller.stop()
