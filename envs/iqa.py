"""``thorgym/IQA-v0``: interactive question answering (IQUAD V1) as Gymnasium environments.

The rules live in :class:`thorgym.tasks.iqa.IQATask`; this module holds the two worlds the task
drives — N worlds of one batched simulator (:class:`IQASimWorlds`) or one AI2-THOR-style
controller (:class:`IQAControllerWorlds`: ``thorgym.sim.Controller`` or the genuine
``ai2thor.controller.Controller``) — and hands task and worlds to the generic adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle

from thorgym.tasks import iqa
from thorgym.tasks.iqa_vocab import class_of

from .task_env import TaskEnv, TaskVectorEnv
from .task_env import autoreset_mode as _autoreset_mode

__all__ = [
    "IQAControllerWorlds", "IQAEnv", "IQASimWorlds", "IQAVectorEnv", "load_questions", "make_iqa_task",
    "make_iqa_vec",
]  # fmt: skip


# -- worlds --------------------------------------------------------------------------------------
class IQASimWorlds:
    """N IQA worlds on one :class:`thorgym.sim.BatchedSimulator` (90° turns, 0.25 m grid, field
    of view 60°, depth and instance segmentation rendered every step: one render per step)."""

    def __init__(self, num_worlds: int, *, width: int, height: int, device: str = "cpu") -> None:
        from thorgym.sim import BatchedSimulator

        self.sim = BatchedSimulator(
            ["FloorPlan1"] * num_worlds, width=width, height=height, grid_size=iqa.GRID_SIZE,
            rotate_step_degrees=iqa.ROTATE_DEGREES, visibility_distance=iqa.VISIBILITY_DISTANCE,
            field_of_view=iqa.FIELD_OF_VIEW, render_depth=True, render_instance_segmentation=True,
            device=device,
        )  # fmt: skip
        self.num_worlds = num_worlds
        self.field_of_view = iqa.FIELD_OF_VIEW
        self._classes = np.zeros((num_worlds, 1), dtype=np.uint8)  # (N, O) map class per object
        self._reachable: list[np.ndarray] = [np.zeros((0, 2))] * num_worlds
        self._reachable_of: dict[str, np.ndarray] = {}
        self._frames: Any = None

    def _index(self, i: int) -> None:
        objs = self.sim.worlds[i].objects
        if self._classes.shape[1] < len(objs):
            grown = np.zeros((self.num_worlds, len(objs)), dtype=np.uint8)
            grown[:, : self._classes.shape[1]] = self._classes
            self._classes = grown
        self._classes[i] = 0
        for k, o in enumerate(objs):
            self._classes[i, k] = class_of(o.object_type)

    def setup(self, i: int, config: iqa.SceneConfig) -> None:
        from thorgym.datasets.iqa import apply_config

        self.sim.reset_world(i, config.scene)
        apply_config(self.sim.worlds[i], config)
        self._index(i)
        # what GetReachablePositions answers right after the set-up (as the controller worlds ask);
        # small objects never block the agent, so the answer is the scene's (cached)
        if config.scene not in self._reachable_of:
            self._reachable_of[config.scene] = _sorted_positions(self.sim.reachable_positions(i))
        self._reachable[i] = self._reachable_of[config.scene]
        self._frames = None

    def reachable(self, i: int) -> np.ndarray:
        return self._reachable[i]

    def teleport(self, i: int, x: float, z: float, rotation: float, horizon: float) -> tuple[bool, str]:
        ok = bool(self.sim.teleport([i], [x], [z], [float(rotation) % 360.0], [horizon])[0])
        self._frames = None
        return ok, "" if ok else f"({x:g}, {z:g}) is not a free agent position"

    def act(self, names: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from thorgym.sim.batch import NAV_INDEX

        n = self.num_worlds
        ok = np.ones(n, dtype=bool)
        target = np.full(n, "", dtype=object)
        nav = np.full(n, -1, dtype=np.int64)
        for i, a in enumerate(names):
            if a is not None and a in NAV_INDEX:
                nav[i] = NAV_INDEX[a]
        for action in ("OpenObject", "CloseObject"):
            ids = [i for i, a in enumerate(names) if a == action]
            if ids:
                done, _, idx = self.sim.interact_at(action, 0.5, 0.5, worlds=ids)
                for j, i in enumerate(ids):
                    ok[i] = bool(done[j])
                    k = int(idx[j])
                    target[i] = self.sim.worlds[i].objects[k].object_id if k >= 0 else ""
        if (nav >= 0).any():
            moved = self.sim.step_nav(torch.as_tensor(nav))[:, 0].cpu().numpy()
            ok = np.where(nav >= 0, moved, ok)
        self._frames = None
        return ok, target

    def objects(self, i: int) -> dict[str, iqa.ObjectState]:
        from thorgym.datasets.iqa import object_states

        return object_states(self.sim.worlds[i])

    def visible_ids(self, i: int) -> set[str]:
        vis = self.sim.visible()[i, 0].cpu().numpy()
        objs = self.sim.worlds[i].objects
        return {objs[k].object_id for k in np.nonzero(vis[: len(objs)])[0]}

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.sim.observe()
        frames: dict[str, np.ndarray] = {}
        if "rgb" in names:
            frames["rgb"] = out.rgb[:, 0].cpu().numpy()
        if "depth" in names:
            frames["depth"] = out.depth[:, 0].cpu().numpy()
        if "classes" in names:
            inst = out.instance[:, 0].cpu().numpy().astype(np.int64)
            rows = np.arange(self.num_worlds)[:, None, None]
            cls = self._classes[rows, np.clip(inst, 0, self._classes.shape[1] - 1)]
            frames["classes"] = np.where(inst >= 0, cls, 0).astype(np.uint8)
        return frames

    def poses(self) -> np.ndarray:
        return self.sim.agent_poses().cpu().numpy().astype(np.float64)

    def close(self) -> None:
        self.sim = None


class IQAControllerWorlds:
    """One IQA world behind an AI2-THOR-style controller (``thorgym.sim.Controller`` or the
    genuine ``ai2thor.controller.Controller``): set-up by ``InitialRandomSpawn`` and
    ``RemoveFromScene``; Open/Close by screen point (``x=y=0.5``), as AI2-THOR does."""

    num_worlds = 1

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.event: Any = None
        init = controller.initialization_parameters
        self.field_of_view = float(init.get("fieldOfView", iqa.FIELD_OF_VIEW))
        self._reachable: np.ndarray | None = None

    def _step(self, action: str, **kw: Any) -> Any:
        self.event = self.controller.step(action=action, **kw)
        return self.event

    def setup(self, i: int, config: iqa.SceneConfig) -> None:
        self.event = self.controller.reset(scene=config.scene)
        self._step("InitialRandomSpawn", **config.spawn_kwargs())
        objs = self.event.metadata["objects"]
        for oid in [o["objectId"] for o in objs if o["objectType"] in config.removed_types]:
            self._step("RemoveFromScene", objectId=oid)
        ev = self._step("GetReachablePositions")
        self._reachable = _sorted_positions([(p["x"], p["z"]) for p in ev.metadata["actionReturn"]])

    def reachable(self, i: int) -> np.ndarray:
        return self._reachable

    def teleport(self, i: int, x: float, z: float, rotation: float, horizon: float) -> tuple[bool, str]:
        y = self.event.metadata["agent"]["position"]["y"]
        rot = {"x": 0, "y": rotation, "z": 0}
        ev = self._step("Teleport", position={"x": x, "y": y, "z": z}, rotation=rot,
                        horizon=horizon)  # fmt: skip
        return bool(ev.metadata["lastActionSuccess"]), str(ev.metadata.get("errorMessage") or "")

    def act(self, names: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        a = names[0]
        if a is None:
            return np.ones(1, dtype=bool), np.array([""], dtype=object)
        before = {o["objectId"]: o["isOpen"] for o in self.event.metadata["objects"]}
        if a in ("OpenObject", "CloseObject"):
            ev = self._step(a, x=0.5, y=0.5)
        else:
            ev = self._step(a)
        ok = bool(ev.metadata["lastActionSuccess"])
        changed = [o["objectId"] for o in ev.metadata["objects"] if before.get(o["objectId"]) != o["isOpen"]]
        return np.array([ok]), np.array([changed[0] if ok and changed else ""], dtype=object)

    def objects(self, i: int) -> dict[str, iqa.ObjectState]:
        out = {}
        for o in self.event.metadata["objects"]:
            parents = o.get("parentReceptacles") or []
            out[o["objectId"]] = iqa.ObjectState(
                o["objectId"], o["objectType"], parents[0] if parents else None, bool(o["openable"]),
                bool(o["isOpen"]),
            )  # fmt: skip
        return out

    def visible_ids(self, i: int) -> set[str]:
        return {o["objectId"] for o in self.event.metadata["objects"] if o["visible"]}

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        ev = self.event
        frames: dict[str, np.ndarray] = {}
        if "rgb" in names:
            frames["rgb"] = np.array(ev.frame, dtype=np.uint8, copy=True)[None]
        if "depth" in names:
            frames["depth"] = np.asarray(ev.depth_frame, dtype=np.float32)[None]
        if "classes" in names:
            # The colour table covers the whole scene (AI2-THOR's): look up only the colours
            # in the frame, each pixel's colour packed into one integer.
            seg = np.asarray(ev.instance_segmentation_frame).astype(np.int32)
            keys = (seg[..., 0] << 16) | (seg[..., 1] << 8) | seg[..., 2]
            uniq, inv = np.unique(keys, return_inverse=True)
            names = {(r << 16) | (g << 8) | b: str(oid) for (r, g, b), oid in ev.color_to_object_id.items()}
            lut = np.array(
                [class_of(names.get(int(k), "").split("|", 1)[0]) or 0 for k in uniq], dtype=np.uint8
            )
            frames["classes"] = lut[inv].reshape(keys.shape)[None]
        return frames

    def poses(self) -> np.ndarray:
        m = self.event.metadata["agent"]
        p = m["position"]
        return np.array([[p["x"], p["z"], m["rotation"]["y"], m["cameraHorizon"]]], dtype=np.float64)

    def close(self) -> None:
        self.controller.stop()


def _sorted_positions(points: Any) -> np.ndarray:
    """(K, 2) positions rounded to the 0.25 m grid, sorted by x then z: both backends list the
    same reachable positions in the same order, so a question's start pose is the same."""
    p = np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2) / iqa.GRID_SIZE) * iqa.GRID_SIZE
    p = np.unique(p, axis=0)
    return p[np.lexsort((p[:, 1], p[:, 0]))]


# -- the semantic-map observation ----------------------------------------------------------------
MAP_CELLS = 64  # 0.25 m cells: 16 m around the episode's start


class MapObservation:
    """Adds ``semantic_map`` to IQA observations: HIMN's top-down map (``thorgym.agents.himn.
    semantic_map``: 21 classes + free space, visited, coverage; 64 × 64 cells of 0.25 m centred
    on the episode's start, rows along +z, columns along +x) built from the depth and the
    ground-truth per-pixel classes of every step of the episode so far."""

    def __init__(self, num_envs: int) -> None:
        from thorgym.agents.himn.semantic_map import NUM_CHANNELS, SemanticMap

        self.map = SemanticMap(num_envs, MAP_CELLS)
        self.channels = NUM_CHANNELS

    def space(self) -> Any:
        from gymnasium import spaces

        return spaces.Box(0, 1, (self.channels, MAP_CELLS, MAP_CELLS), np.uint8)

    def update(self, obs: dict[str, np.ndarray], new: np.ndarray) -> dict[str, np.ndarray]:
        """Batched obs (N, …): reset the maps of ``new`` episodes, then add every env's view."""
        import torch

        poses = torch.as_tensor(obs["pose"], dtype=torch.float32)
        ids = np.nonzero(new)[0]
        if len(ids):
            self.map.reset_around(torch.as_tensor(ids), poses[ids, :2])
        depth = torch.as_tensor(obs["depth"][..., 0])
        self.map.update(depth, torch.as_tensor(obs["classes"]).long(), poses, iqa.FIELD_OF_VIEW)
        return {**obs, "semantic_map": self.map.map.numpy().astype(np.uint8)}


# -- environments --------------------------------------------------------------------------------
def load_questions(split: str | None, questions: Any) -> list[iqa.Question]:
    """Questions from an explicit list/CSV path, else a shipped split ("seen", "unseen"), else
    the train CSV at ``train_csv`` (generate one with ``thorgym data iqa``)."""
    if questions is not None:
        if isinstance(questions, str):
            return iqa.read_questions(questions)
        return [q if isinstance(q, iqa.Question) else iqa.Question.from_dict(q) for q in questions]
    from thorgym.datasets.iqa import shipped_questions

    if split in ("seen", "unseen"):
        return shipped_questions(split)
    if split == "train":
        raise ValueError(
            "the IQA train split is generated on demand: run `thorgym data iqa --out DIR` and pass "
            "questions='DIR/train.csv' (the shipped splits are 'seen' and 'unseen')"
        )
    raise ValueError(f"unknown IQA split {split!r}: use 'train' (with questions=...), 'seen' or 'unseen'")


def make_iqa_task(
    questions: Sequence[iqa.Question],
    *,
    width: int,
    height: int,
    depth: bool,
    classes: bool,
    max_steps: int,
    track_paths: bool = False,
) -> iqa.IQATask:
    from thorgym.datasets.iqa import question_tokens

    sensors = ["rgb"] + (["depth"] if depth else []) + (["classes"] if classes else [])
    return iqa.IQATask(questions, embed=question_tokens, sensors=sensors, frame_shape=(height, width),
                       max_steps=max_steps, track_paths=track_paths)  # fmt: skip


_DOC = """Interactive question answering in kitchens: IQUAD V1 (Gordon et al., CVPR 2018).

    ## Description
    The agent is asked a question about the kitchen it stands in — existence ("Is there a mug
    in the room?"), counting ("How many eggs are there in the room?", 0–3) or contains ("Is there
    a tomato in the fridge?") — and must explore, open receptacles and answer. Each question
    comes with its own scene configuration (scene + InitialRandomSpawn seed with repeats and
    removals). Splits: train and seen-test on FloorPlan6–30, unseen-test on FloorPlan1–5;
    ``thorgym data iqa`` generates them, the two test splits ship with thorgym.

    ## Action Space
    ``Discrete(11)``: 0 MoveAhead (0.25 m), 1 RotateLeft, 2 RotateRight (90°), 3 LookUp, 4
    LookDown (horizon in {−30, 0, 30, 60}; beyond fails), 5 OpenObject, 6 CloseObject (the
    object at the image centre), 7–10 Answer 0–3 (yes/no questions: 0 = no, 1 = yes; 2 and 3
    are invalid there and fail).

    ## Observation Space
    ``Dict``: ``rgb`` ``Box(0, 255, (H, W, 3), uint8)``; ``depth`` ``Box(0, 10, (H, W, 1),
    float32)`` metres (``depth=True``); ``classes`` ``Box(0, 20, (H, W), uint8)`` ground-truth map
    class per pixel (``classes=True``, :data:`thorgym.tasks.iqa_vocab.MAP_CLASSES`);
    ``question_type`` ``Discrete(3)`` (existence, counting, contains); ``object`` and
    ``container`` ``Discrete(21)`` (class indices; container 0 when none); ``question_tokens``
    ``Box(-10, 10, (16, 50), float32)`` GloVe vectors of the question's words; ``pose`` ``Box((4,))``
    x, z, rotation, horizon.

    ## Rewards
    The reference code's, scaled and clipped: −0.01 per step, −0.05 more for a failed action;
    contains questions: opening a receptacle of another type −1; first opening of a receptacle
    +5 (the asked container) or +0.1; first closing +0.1; coverage (new floor cells / 26); +10
    when the evidence is first seen, then −1 per step for existence/contains; answer +10 if
    correct with the evidence seen, else −30; timeout −30; reward = clip(r / 10, −3, 1).

    ## Episode End
    Terminated: the agent answered (``info["correct"]``). Truncated: 1,000 steps (−30).

    ## Info
    ``scene``, ``question_type``, ``answer``, ``given_answer`` (−1 before an answer),
    ``correct``, ``evidence_seen``, ``invalid_actions``, ``backend_restart``.

    ## Arguments
    - ``split``: "seen" or "unseen" (shipped test questions, played in order) or "train" with
      ``questions`` (a CSV path or a list of questions/dicts; sampled).
    - ``backend``: "sim" (default) or "ai2thor" (``controller_kwargs`` for
      ``ai2thor.controller.Controller``; ``local_executable_path=<thorgym-thor>`` runs the genuine
      client on the built-in simulator).
    - ``width``, ``height``: frame size (default 300×300 as the paper); ``depth``, ``classes``:
      add those observations; ``max_steps``: 1,000; ``device``: the simulator's torch device.
    - ``semantic_map``: add ``semantic_map`` ``Box(0, 1, (24, 64, 64), uint8)``, HIMN's top-down map
      of the episode so far from depth and ground-truth classes (see :class:`MapObservation`;
      implies ``depth`` and ``classes``).
    - ``sample``: sample questions even on a test split (default: play them in order).
    """


class IQAEnv(TaskEnv, EzPickle):
    __doc__ = _DOC

    def __init__(
        self,
        split: str = "seen",
        questions: Any = None,
        backend: str = "sim",
        width: int = iqa.FRAME_SIZE,
        height: int = iqa.FRAME_SIZE,
        depth: bool = False,
        classes: bool = False,
        max_steps: int = iqa.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        controller_kwargs: Mapping[str, Any] | None = None,
        semantic_map: bool = False,
    ) -> None:
        EzPickle.__init__(self, split=split, questions=questions, backend=backend, width=width, height=height,
                          depth=depth, classes=classes, max_steps=max_steps, device=device, sample=sample,
                          render_mode=render_mode, controller_kwargs=controller_kwargs,
                          semantic_map=semantic_map)  # fmt: skip
        qs = load_questions(split, questions)
        depth, classes = depth or semantic_map, classes or semantic_map
        task = make_iqa_task(qs, width=width, height=height, depth=depth, classes=classes,
                             max_steps=max_steps, track_paths=True)  # fmt: skip
        if backend == "sim":
            worlds: Any = IQASimWorlds(1, width=width, height=height, device=device)
        elif backend == "ai2thor":
            from ai2thor.controller import Controller

            kw = dict(controller_kwargs or {})
            kw.update(width=width, height=height, fieldOfView=iqa.FIELD_OF_VIEW, gridSize=iqa.GRID_SIZE,
                      rotateStepDegrees=iqa.ROTATE_DEGREES, renderDepthImage=True,
                      renderInstanceSegmentation=True, scene=qs[0].scene)  # fmt: skip
            worlds = IQAControllerWorlds(Controller(**kw))
        else:
            raise ValueError(f"unknown backend {backend!r}: use 'sim' (built-in) or 'ai2thor'")
        fixed = None if (sample or split == "train") else qs
        super().__init__(task, worlds, fixed, render_mode)
        self._map = MapObservation(1) if semantic_map else None
        if self._map is not None:
            self.observation_space = spaces_with(self.observation_space, self._map.space())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        obs, info = super().reset(seed=seed, options=options)
        return self._with_map(obs, True), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, r, te, tr, info = super().step(action)
        return self._with_map(obs, info["episode_length"] == 0), r, te, tr, info

    def _with_map(self, obs: dict[str, Any], new: bool) -> dict[str, Any]:
        if self._map is None:
            return obs
        batched = {k: np.asarray(v)[None] for k, v in obs.items()}
        out = self._map.update(batched, np.array([new]))
        obs = dict(obs)
        obs["semantic_map"] = out["semantic_map"][0]
        self._obs = obs
        return obs


class IQAVectorEnv(TaskVectorEnv):
    """N IQA environments on one batched simulator (see :class:`IQAEnv`); sub-environment i plays
    test questions i, i+N, … in order, or samples train questions."""

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "seen",
        questions: Any = None,
        width: int = iqa.FRAME_SIZE,
        height: int = iqa.FRAME_SIZE,
        depth: bool = False,
        classes: bool = False,
        max_steps: int = iqa.MAX_STEPS,
        device: str = "cpu",
        sample: bool = False,
        render_mode: str | None = None,
        autoreset_mode: str = "NextStep",
        backend: str = "sim",
        semantic_map: bool = False,
    ) -> None:
        if backend != "sim":
            raise ValueError("IQAVectorEnv runs on the built-in simulator; use make_iqa_vec for 'ai2thor'")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        qs = load_questions(split, questions)
        depth, classes = depth or semantic_map, classes or semantic_map
        task = make_iqa_task(
            qs, width=width, height=height, depth=depth, classes=classes, max_steps=max_steps
        )
        worlds = IQASimWorlds(num_envs, width=width, height=height, device=device)
        fixed = None if (sample or split == "train") else qs
        super().__init__(task, worlds, fixed, render_mode, _autoreset_mode(autoreset_mode))
        self._map = MapObservation(num_envs) if semantic_map else None
        if self._map is not None:
            from gymnasium.vector.utils import batch_space

            self.single_observation_space = spaces_with(self.single_observation_space, self._map.space())
            self.observation_space = batch_space(self.single_observation_space, num_envs)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        mask = (options or {}).get("reset_mask")
        obs, info = super().reset(seed=seed, options=options)
        if self._map is not None:
            new = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
            obs = self._map.update(obs, new)
            self._obs = obs
        return obs, info

    def step(self, actions: Any) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, r, te, tr, info = super().step(actions)
        if self._map is not None:
            if "final_obs" in info:  # SAME_STEP: the ended episodes' last views go into their maps first
                ended = np.asarray(info["_final_obs"], dtype=bool)
                last = {k: np.array(v, copy=True) for k, v in obs.items()}
                for i in np.nonzero(ended)[0]:
                    for k in last:
                        last[k][i] = info["final_obs"][i][k]
                final = self._map.update(last, np.zeros(self.num_envs, dtype=bool))["semantic_map"]
                for i in np.nonzero(ended)[0]:
                    info["final_obs"][i]["semantic_map"] = final[i].copy()
            obs = self._map.update(obs, np.asarray(info["episode_length"]) == 0)
            self._obs = obs
        return obs, r, te, tr, info

    @property
    def sim(self) -> Any:
        return self.worlds.sim


def spaces_with(space: Any, map_space: Any) -> Any:
    from gymnasium import spaces

    return spaces.Dict({**space.spaces, "semantic_map": map_space})


def make_iqa_vec(num_envs: int = 1, backend: str = "sim", **kwargs: Any) -> Any:
    """``vector_entry_point`` of ``thorgym/IQA-v0``: natively batched on the built-in simulator,
    an ``AsyncVectorEnv`` of :class:`IQAEnv` for ``backend="ai2thor"``."""
    if backend == "sim":
        kwargs.pop("controller_kwargs", None)
        return IQAVectorEnv(num_envs=num_envs, **kwargs)
    if backend == "ai2thor":
        import functools

        import gymnasium as gym

        mode = _autoreset_mode(kwargs.pop("autoreset_mode", "NextStep"))
        fn = functools.partial(IQAEnv, backend="ai2thor", **kwargs)
        return gym.vector.AsyncVectorEnv([fn] * num_envs, autoreset_mode=mode)
    raise ValueError(f"unknown backend {backend!r}: use 'sim' or 'ai2thor'")
