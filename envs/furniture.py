"""FurnLift and FurnMove environments: worlds on both backends and the env constructors.

- :class:`FurnitureSimWorlds`: N two-agent worlds of one :class:`thorgym.sim.BatchedSimulator`
  (one render per step for all agents of all worlds).
- :class:`FurnitureControllerWorlds`: one world behind an AI2-THOR controller with
  ``agentCount=2`` — the genuine ``ai2thor`` client (pointed at AI2-THOR or at ``thorgym-thor``)
  or :class:`thorgym.sim.Controller`. Group moves are ``Teleport`` of both agents and
  ``TeleportObject`` of the Television, checked first and undone on a failure.
- ``furnlift_parallel_env`` / ``furnmove_parallel_env`` (PettingZoo), ``FurnLiftEnv`` /
  ``FurnMoveEnv`` (Gymnasium, joint dict action; ids ``thorgym/FurnLift-v0``,
  ``thorgym/FurnMove-v0``) and ``make_furniture_vec`` (``gymnasium.make_vec``, natively batched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle

from thorgym.sim.scenes import parse_scene
from thorgym.tasks import furniture as fur

from .multi_agent import MultiAgentTaskEnv, MultiAgentTaskVectorEnv, TaskParallelEnv

__all__ = [
    "FurnLiftEnv",
    "FurnMoveEnv",
    "FurnitureControllerWorlds",
    "FurnitureSimWorlds",
    "furnlift_parallel_env",
    "furnmove_parallel_env",
    "make_furniture_vec",
]


class FurnitureSimWorlds:
    """N two-agent living-room worlds on the built-in simulator (90° turns, 0.25 m grid).

    Args:
        num_worlds: N; width, height: frame size per agent; depth: also depth frames.
        agents_visible: draw each agent in its partner's view (AI2-THOR's ``makeAgentsVisible``).
        visibility_distance: AI2-THOR's visibility rule (FurnLift: 1.25 m).
        device: torch device of the simulator.
    """

    agent_count = 2

    def __init__(
        self,
        num_worlds: int,
        *,
        width: int = fur.FRAME_SIZE,
        height: int = fur.FRAME_SIZE,
        depth: bool = False,
        agents_visible: bool = True,
        visibility_distance: float = fur.VISIBILITY_DISTANCE,
        device: str = "cpu",
        scene: str = "FloorPlan201",
    ) -> None:
        from thorgym.sim import BatchedSimulator

        self.sim = BatchedSimulator(
            [scene] * num_worlds,
            width=width,
            height=height,
            agent_count=2,
            grid_size=fur.GRID_SIZE,
            rotate_step_degrees=fur.ROTATE_DEGREES,
            visibility_distance=visibility_distance,
            field_of_view=fur.FIELD_OF_VIEW,
            render_depth=depth,
            render_instance_segmentation=False,
            device=device,
            agents_visible=agents_visible,
        )
        self.num_worlds = num_worlds
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
        return self.sim.move_group(list(worlds), (0, 1), idx, list(dx), list(dz)).cpu().numpy()

    def poses(self) -> np.ndarray:
        return np.stack([self.sim.agent_poses(a).cpu().numpy() for a in range(2)], 1).astype(np.float64)

    def object_poses_by_id(self, i: int, object_id: str) -> np.ndarray:
        o = self.sim.worlds[i].object(object_id)
        return np.array([*(float(v) for v in o.center), float(o.facing)])

    def object_poses(self, object_ids: Sequence[str]) -> np.ndarray:
        return np.stack([self.object_poses_by_id(i, o) for i, o in enumerate(object_ids)])

    def visible(self, object_ids: Sequence[str]) -> np.ndarray:
        # One render gives the frames and the visibility (observe() reuses it for the sensors).
        vis = self.sim.observe().visible.cpu().numpy()  # (N, A, O)
        out = np.zeros((self.num_worlds, 2), dtype=bool)
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


class FurnitureControllerWorlds:
    """One two-agent world behind an AI2-THOR controller (``agentCount=2``)."""

    num_worlds = 1
    agent_count = 2

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.events: list[Any] = []
        self._last: Any = None
        self.scene: str | None = None

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
        ok = np.ones((1, 2), dtype=bool)
        for a in range(2):  # agents act in index order, as the batched simulator does
            if acts[a] >= 0:
                ok[0, a] = bool(self._step(NAV_ACTIONS[int(acts[a])], agent=a).metadata["lastActionSuccess"])
        return ok

    def move_group(
        self, worlds: Sequence[int], object_ids: Sequence[str], dx: Sequence[float], dz: Sequence[float]
    ) -> np.ndarray:
        """Both agents and the object one step together: the object first, then the agents (the
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
        out = np.zeros((1, 2, 4))
        for a in range(2):
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
        out = np.zeros((1, 2), dtype=bool)
        for a in range(2):
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

        return sim_layout(World(get_scene(self.scene or "FloorPlan201"), 2))

    def close(self) -> None:
        self.controller.stop()


# -- constructors --------------------------------------------------------------------------------
TASKS = {"furnlift": fur.FurnLiftTask, "furnmove": fur.FurnMoveTask}


def make_task(
    task: str, split: str, *, width: int, height: int, depth: bool, max_steps: int, top_down_map: bool = False
) -> Any:
    if task not in TASKS:
        raise ValueError(f"unknown furniture task {task!r}: choose from {tuple(TASKS)}")
    sensors = ("rgb", "depth") if depth else ("rgb",)
    if top_down_map:
        sensors = (*sensors, "map")
    return TASKS[task](scenes=split, sensors=sensors, frame_shape=(height, width), max_steps=max_steps)


def make_worlds(
    task: str,
    num_worlds: int,
    backend: str,
    *,
    width: int,
    height: int,
    depth: bool,
    agents_visible: bool,
    device: str,
    controller_kwargs: Mapping[str, Any] | None,
) -> Any:
    vis = fur.VISIBILITY_DISTANCE if task == "furnlift" else 1.5
    if backend == "sim":
        return FurnitureSimWorlds(
            num_worlds,
            width=width,
            height=height,
            depth=depth,
            agents_visible=agents_visible,
            visibility_distance=vis,
            device=device,
        )
    if backend == "ai2thor":
        if num_worlds != 1:
            raise ValueError("the ai2thor backend drives one world per controller; use num_envs=1")
        from ai2thor.controller import Controller

        kw = dict(controller_kwargs or {})
        kw.update(
            agentCount=2,
            width=width,
            height=height,
            gridSize=fur.GRID_SIZE,
            rotateStepDegrees=fur.ROTATE_DEGREES,
            fieldOfView=fur.FIELD_OF_VIEW,
            visibilityDistance=vis,
            renderDepthImage=depth,
            makeAgentsVisible=agents_visible,
            scene=kw.get("scene", "FloorPlan201"),
        )
        return FurnitureControllerWorlds(Controller(**kw))
    raise ValueError(f"unknown backend {backend!r}: use 'sim' (built-in) or 'ai2thor'")


def _episodes(task: str, split: str, sample: bool) -> list[dict[str, Any]] | None:
    if sample or split == "train":
        return None
    from thorgym.datasets.furniture import load_episodes

    return load_episodes(task, split)


_ARGS_DOC = """
    Arguments:
        split: "train" (sampled episodes on FloorPlan201–220), "val" or "test" (the shipped fixed
            episodes of FloorPlan221–225 / 226–230, played in order).
        backend: "sim" (built-in) or "ai2thor" (the genuine client, ``agentCount=2``).
        width, height: frame size per agent (84×84 as the paper). depth: also depth frames.
        top_down_map: also a "map" observation (H, W, 5) uint8, egocentric (the agent at the
            centre facing up, 3.2 m to each side): obstacles, the Television, the agent, its
            partner, the goal (FurnMove).
        agents_visible: render each agent in its partner's view (implicit communication).
        max_steps: joint-step limit (250). device: the simulator's torch device.
        sample: sample episodes on val/test scenes instead of the fixed ones.
        render_mode: None or "rgb_array" (both agents' views side by side).
        controller_kwargs: extra ``ai2thor.controller.Controller`` arguments (ai2thor backend).
"""


class _FurnitureEnv(MultiAgentTaskEnv, EzPickle):
    task_name = "furnlift"

    def __init__(
        self,
        split: str = "train",
        backend: str = "sim",
        width: int = fur.FRAME_SIZE,
        height: int = fur.FRAME_SIZE,
        depth: bool = False,
        top_down_map: bool = False,
        agents_visible: bool = True,
        max_steps: int = fur.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        controller_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        EzPickle.__init__(
            self, split=split, backend=backend, width=width, height=height, depth=depth,
            top_down_map=top_down_map, agents_visible=agents_visible, max_steps=max_steps, device=device,
            sample=sample, render_mode=render_mode, controller_kwargs=controller_kwargs,
        )  # fmt: skip
        settings = FurnitureSettings(
            split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
            controller_kwargs,
        )  # fmt: skip
        super().__init__(*settings.parts(self.task_name), render_mode)


class FurnLiftEnv(_FurnitureEnv):
    __doc__ = (
        """FurnLift (Two Body Problem): two agents find the Television and lift it together.

    Description:
        Living rooms; the Television stands at a random floor spot. Success when both agents
        choose Pickup in the same step while both see the Television within 1.25 m and stand at
        least 8 grid steps apart (Manhattan). See ``thorgym.tasks.furniture``.

    Action Space:
        ``Dict({"agent_0": Discrete(5), "agent_1": Discrete(5)})``: MoveAhead, RotateLeft,
        RotateRight, Pass, Pickup.

    Observation Space:
        ``Dict({"agent_0": Dict(rgb=Box(0, 255, (H, W, 3), uint8)[, depth]), "agent_1": …})``.

    Rewards:
        The team reward (sum over agents); per agent −0.01 per step, −0.02 per failed action,
        −0.1 more per wrong Pickup, +1 on success (``info["agent_rewards"]``).

    Episode End:
        Terminated on success; truncated after 250 joint steps.
"""
        + _ARGS_DOC
    )
    task_name = "furnlift"


class FurnMoveEnv(_FurnitureEnv):
    __doc__ = (
        """FurnMove (A Cordial Sync): two agents carry the lifted Television to the goal furniture.

    Description:
        The agents hold the Television 1.3 m up and must stay within 0.76 m of it. Joint actions
        happen only when both choose them; mismatched pairs fail. Success when the Television's
        centre is within 0.26 m (Manhattan) of the goal's. See ``thorgym.tasks.furniture``.

    Action Space:
        ``Dict({"agent_0": Discrete(13), "agent_1": Discrete(13)})`` (``FURNMOVE_ACTIONS``).

    Observation Space:
        As FurnLift's.

    Rewards:
        The team reward; per agent −0.01 per step, −0.02 per failed action, +1 for a new closest
        distance to the goal, +1 on success.

    Episode End:
        Terminated on success; truncated after 250 joint steps.
"""
        + _ARGS_DOC
    )
    task_name = "furnmove"


@dataclass(frozen=True)
class FurnitureSettings:
    """What a furniture environment is made of (the constructors' arguments, documented there)."""

    split: str = "train"
    backend: str = "sim"
    width: int = fur.FRAME_SIZE
    height: int = fur.FRAME_SIZE
    depth: bool = False
    top_down_map: bool = False
    agents_visible: bool = True
    max_steps: int = fur.MAX_STEPS
    device: str = "cpu"
    sample: bool = False
    controller_kwargs: Mapping[str, Any] | None = None

    def parts(self, task_name: str, num_worlds: int = 1) -> tuple[Any, Any, list[dict[str, Any]] | None]:
        """(task, worlds, fixed episodes or None)."""
        task = make_task(
            task_name, self.split, width=self.width, height=self.height, depth=self.depth,
            max_steps=self.max_steps, top_down_map=self.top_down_map,
        )  # fmt: skip
        worlds = make_worlds(
            task_name, num_worlds, self.backend, width=self.width, height=self.height, depth=self.depth,
            agents_visible=self.agents_visible, device=self.device, controller_kwargs=self.controller_kwargs,
        )  # fmt: skip
        return task, worlds, _episodes(task_name, self.split, self.sample)


def furnlift_parallel_env(
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
) -> TaskParallelEnv:
    """FurnLift as a PettingZoo ``ParallelEnv`` (agents "agent_0", "agent_1"; see FurnLiftEnv)."""
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
        controller_kwargs,
    )  # fmt: skip
    return TaskParallelEnv(*settings.parts("furnlift"), render_mode)


def furnmove_parallel_env(
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    controller_kwargs: Mapping[str, Any] | None = None,
) -> TaskParallelEnv:
    """FurnMove as a PettingZoo ``ParallelEnv`` (agents "agent_0", "agent_1"; see FurnMoveEnv)."""
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample,
        controller_kwargs,
    )  # fmt: skip
    return TaskParallelEnv(*settings.parts("furnmove"), render_mode)


def make_furniture_vec(
    num_envs: int = 1,
    task: str = "furnlift",
    split: str = "train",
    backend: str = "sim",
    width: int = fur.FRAME_SIZE,
    height: int = fur.FRAME_SIZE,
    depth: bool = False,
    top_down_map: bool = False,
    agents_visible: bool = True,
    max_steps: int = fur.MAX_STEPS,
    device: str = "cpu",
    sample: bool = False,
    render_mode: str | None = None,
    autoreset_mode: str = "NextStep",
    controller_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """``vector_entry_point`` of the furniture envs: natively batched on the built-in simulator;
    an ``AsyncVectorEnv`` of single envs for ``backend="ai2thor"``."""
    if backend == "ai2thor":
        import functools

        import gymnasium as gym

        cls = FurnLiftEnv if task == "furnlift" else FurnMoveEnv
        fn = functools.partial(
            cls, split=split, backend="ai2thor", width=width, height=height, depth=depth,
            top_down_map=top_down_map, agents_visible=agents_visible, max_steps=max_steps, sample=sample,
            render_mode=render_mode, controller_kwargs=controller_kwargs,
        )  # fmt: skip
        mode = gym.vector.AutoresetMode(autoreset_mode)
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=mode)
    settings = FurnitureSettings(
        split, backend, width, height, depth, top_down_map, agents_visible, max_steps, device, sample, None
    )
    return MultiAgentTaskVectorEnv(*settings.parts(task, num_envs), render_mode, autoreset_mode)


def make_furnlift_vec(num_envs: int = 1, **kwargs: Any) -> Any:
    return make_furniture_vec(num_envs, "furnlift", **kwargs)


def make_furnmove_vec(num_envs: int = 1, **kwargs: Any) -> Any:
    return make_furniture_vec(num_envs, "furnmove", **kwargs)
