"""``thorgym/ForcePrediction-v0``: predict what a push does to an object, as a Gymnasium env.

The rules (label quantisation, measures) live in :mod:`thorgym.tasks.forces`; the samples come
from :mod:`thorgym.datasets.forces` — drawn live from the simulator and MuJoCo on every reset,
or read from a generated dataset. An episode is one sample and one step, so this env does not
drive worlds step by step through the task adapters of :mod:`thorgym.envs.task_env`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from thorgym.tasks.forces import FORCE_FEATURES, MAGNITUDES, NUM_CLASSES, SPLITS, STEPS, force_encoding

__all__ = ["ForcePredictionEnv", "ForcePushEnv"]

_SAMPLE_KEYS = ("image", "mask", "point", "angle", "magnitude", "labels", "object_type", "scene")


class ForcePredictionEnv(gym.Env):
    """Predict the 6-step motion of an object that is pushed ("What happens if…", Mottaghi et al.).

    ## Description
    The agent sees an image of an AI2-THOR scene (built-in simulator), the mask of one object in
    it and a force: where it acts (a point on the object in the image), its horizontal direction
    relative to the camera and its magnitude in newtons. It answers with the object's motion
    after the push as 6 steps of 0.15 s, each one of 18 classes (stop, 8 sliding directions,
    8 falling directions, falling straight down; :mod:`thorgym.tasks.forces` documents them).
    The truth comes from MuJoCo rigid-body physics on the scene.

    ## Action Space
    ``MultiDiscrete([18] * 6)``: the predicted class of each step.

    ## Observation Space
    ``Dict``:
    - ``image`` (H, W, 3) uint8, the view before the push;
    - ``mask`` (H, W, 1) uint8, 255 on the pushed object's pixels and 0 elsewhere (an image
      channel, as Stable-Baselines3 expects);
    - ``force`` (5,) float32: image point x, y in [0, 1], sin and cos of the push angle
      (clockwise from the camera's forward), log(magnitude) / log(160 N).

    ## Rewards
    1 when all 6 predicted steps are right, else 0 (the paper's whole-sequence accuracy).

    ## Episode End
    Terminated after the one step. ``info``: ``labels`` (the truth), ``per_step_accuracy``,
    ``correct``, ``all_stop`` (the paper leaves all-stop sequences out of its accuracy),
    ``object_type``, ``scene``.

    ## Arguments
    - ``split``: "train", "val" or "test" — which scenes (AI2-THOR's split by scene).
    - ``data``: None (default) draws each sample live: a scene of the split, a view, an object, a
      force, simulated; a folder written by ``thorgym data forces`` (or "shipped" for the small
      test split in the package) draws from its samples instead.
    - ``size``: image size in pixels when live (stored samples have their own).
    - ``render_mode``: "rgb_array" returns the image with the mask tinted.
    - ``backend``: "sim" only (the truth is thorgym's physics).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        split: str = "train",
        data: str | Path | None = None,
        size: int = 64,
        render_mode: str | None = None,
        backend: str = "sim",
    ) -> None:
        from thorgym.datasets.forces import load_split
        from thorgym.sim.scenes import scenes_for

        if backend != "sim":
            raise ValueError(
                f"ForcePrediction-v0 takes its truth from thorgym's MuJoCo physics: backend must be 'sim', "
                f"got {backend!r} (on AI2-THOR, call PushObject / DirectionalPush on the controller directly)"
            )
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.split = split
        self.render_mode = render_mode
        self._arrays = None
        if data is not None:
            self._arrays = load_split(None if str(data) == "shipped" else data, split)
            size = int(self._arrays.image.shape[1])
        elif not isinstance(size, int) or not 32 <= size <= 300:
            raise ValueError(f"size must be an integer in [32, 300] pixels, got {size!r}")
        self.size = size
        self._scenes = scenes_for(split)
        self._sims: dict[str, Any] = {}
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
                "mask": spaces.Box(0, 255, (size, size, 1), np.uint8),
                "force": spaces.Box(-1.0, 2.0, (FORCE_FEATURES,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([NUM_CLASSES] * STEPS)
        self._sample: dict[str, Any] | None = None

    # -- samples -----------------------------------------------------------------------------
    def _draw(self, options: dict[str, Any] | None) -> dict[str, Any]:
        if self._arrays is not None:
            n = len(self._arrays)
            index = options.get("index") if options else None
            if index is None:
                index = int(self.np_random.integers(n))
            if not isinstance(index, int | np.integer) or not 0 <= index < n:
                raise ValueError(f"options['index'] must be an integer in [0, {n}), got {index!r}")
            return {k: getattr(self._arrays, k)[index] for k in _SAMPLE_KEYS}
        from thorgym.datasets.forces import scene_samples, scene_simulator

        scene = options.get("scene") if options else None
        if scene is None:
            scene = self._scenes[int(self.np_random.integers(len(self._scenes)))]
        elif scene not in self._scenes:
            raise ValueError(f"options['scene'] {scene!r} is not a {self.split} scene: {self._scenes}")
        while True:
            if scene not in self._sims:
                self._sims[scene] = scene_simulator(scene, self.size)
            arrays, _ = scene_samples(
                scene, 1, int(self.np_random.integers(2**31)), self.size, self._sims[scene]
            )
            if arrays is not None:
                return {k: getattr(arrays, k)[0] for k in _SAMPLE_KEYS}
            scene = self._scenes[int(self.np_random.integers(len(self._scenes)))]

    def _obs(self) -> dict[str, np.ndarray]:
        s = self._sample
        return {
            "image": np.asarray(s["image"], dtype=np.uint8).copy(),
            "mask": np.asarray(s["mask"], dtype=np.uint8)[..., None] * np.uint8(255),
            "force": force_encoding(s["point"], s["angle"], s["magnitude"])[0],
        }

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._sample = self._draw(options)
        return self._obs(), {
            "object_type": str(self._sample["object_type"]),
            "scene": str(self._sample["scene"]),
        }

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._sample is None:
            raise RuntimeError("ForcePredictionEnv.step called before reset(); call env.reset() first")
        pred = np.asarray(action)
        if pred.shape != (STEPS,) or not self.action_space.contains(pred.astype(np.int64)):
            raise ValueError(f"action must be {STEPS} integers in [0, {NUM_CLASSES}), got {action!r}")
        labels = np.asarray(self._sample["labels"], dtype=np.int64)
        right = pred.astype(np.int64) == labels
        correct = bool(right.all())
        info = {
            "labels": labels.copy(),
            "per_step_accuracy": float(right.mean()),
            "correct": correct,
            "all_stop": bool((labels == 0).all()),
            "object_type": str(self._sample["object_type"]),
            "scene": str(self._sample["scene"]),
        }
        obs = self._obs()
        self._sample = None
        return obs, float(correct), True, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._sample is None:
            return None
        img = np.asarray(self._sample["image"], dtype=np.float32).copy()
        m = np.asarray(self._sample["mask"], dtype=bool)
        img[m] = 0.5 * img[m] + 0.5 * np.array([255.0, 40.0, 40.0])
        return img.astype(np.uint8)

    def close(self) -> None:
        self._sims.clear()


class ForcePushEnv(gym.Env):
    """Push an object to a goal spot on its surface: the interactive side of "What happens if…".

    ## Description
    The agent stands still in a built-in AI2-THOR scene (looking down 30°) in front of a small
    object that rests on the floor or on furniture. A goal spot 0.3–0.6 m away on the same
    surface is given relative to the object. Each step the agent pushes the object
    (AI2-THOR's ``DirectionalPush`` at the object's centre) and MuJoCo simulates the scene until
    it is at rest; the next observation shows where the object went.

    ## Action Space
    ``MultiDiscrete([8, 5])``: the push direction, 45° bins clockwise from the camera's forward
    (0 = away from the camera), and the magnitude, one of 10, 20, 40, 80, 160 N (capped where it
    would throw the object faster than ``thorgym.sim.physics.MAX_PUSH_SPEED``).

    ## Observation Space
    ``Dict``: ``image`` (H, W, 3) uint8; ``mask`` (H, W, 1) uint8, 255 on the object;
    ``goal`` (4,) float32: the goal's offset from the object in the camera's frame (metres to
    the right, metres away from the camera) and the goal's image point x, y (may lie outside
    [0, 1] when the goal is out of view).

    ## Rewards
    The decrease in horizontal distance to the goal (metres) minus 0.01 per push, and +1 on
    success.

    ## Episode End
    Terminated on success (the object's centre within ``goal_radius`` of the goal, still on its
    surface) or when the object falls off its surface; truncated after ``max_pushes`` pushes.
    ``info``: ``distance``, ``success``, ``fell``, ``pushes``, ``scene``, ``object_id``.

    ## Arguments
    - ``split``: "train", "val" or "test" scenes; ``size``: image size in pixels.
    - ``max_pushes`` (8), ``goal_radius`` (0.15 m); ``render_mode``: "rgb_array" (image with the
      object tinted red and the goal marked).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}
    ANGLES = tuple(range(0, 360, 45))

    def __init__(
        self,
        split: str = "train",
        size: int = 64,
        max_pushes: int = 8,
        goal_radius: float = 0.15,
        render_mode: str | None = None,
        backend: str = "sim",
    ) -> None:
        from thorgym.sim.scenes import scenes_for

        if backend != "sim":
            raise ValueError(
                f"ForcePush-v0 runs on thorgym's MuJoCo physics: backend must be 'sim', got {backend!r}"
            )
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
        if not isinstance(size, int) or not 32 <= size <= 300:
            raise ValueError(f"size must be an integer in [32, 300] pixels, got {size!r}")
        if not isinstance(max_pushes, int) or max_pushes < 1:
            raise ValueError(f"max_pushes must be a positive integer, got {max_pushes!r}")
        if not 0 < goal_radius < 1:
            raise ValueError(f"goal_radius must be in (0, 1) metres, got {goal_radius!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.split, self.size, self.max_pushes, self.goal_radius = split, size, max_pushes, goal_radius
        self.render_mode = render_mode
        self._scenes = scenes_for(split)
        self._sims: dict[str, Any] = {}
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
                "mask": spaces.Box(0, 255, (size, size, 1), np.uint8),
                "goal": spaces.Box(-10.0, 10.0, (4,), np.float32),
            }
        )
        self.action_space = spaces.MultiDiscrete([len(self.ANGLES), len(MAGNITUDES)])
        self._sim: Any = None
        self._index = -1

    # -- set-up ------------------------------------------------------------------------------
    def _setup(self, scene: str) -> bool:
        """A view, an object and a goal in `scene`, drawn from np_random; False if none found."""
        from thorgym.sim.objects import OBJECT_TYPES

        if scene not in self._sims:
            from thorgym.datasets.forces import scene_simulator

            self._sims[scene] = scene_simulator(scene, self.size)
        sim = self._sim = self._sims[scene]
        sim.reset_world(0)
        world = sim.worlds[0]
        moves = set(sim.physics(0).dynamic)
        reachable = sim.reachable_positions(0)
        rng = self.np_random
        for _ in range(30):
            x, z = reachable[int(rng.integers(len(reachable)))]
            yaw = 90.0 * int(rng.integers(4))
            sim.teleport([0], [x], [z], [yaw], [30.0])
            _, visible = sim.render()
            vis = visible[0, 0].cpu().numpy()
            cands = [
                j
                for j in np.flatnonzero(vis)
                if j in moves and OBJECT_TYPES[world.objects[j].object_type].pickupable
            ]
            for j in rng.permutation(cands):
                goal = self._goal_for(world, int(j), rng)
                if goal is not None:
                    self._index, self._goal, self._yaw = int(j), goal, yaw
                    self._start_y = float(world.objects[int(j)].center[1])
                    self._support = world.objects[int(j)].parent
                    return True
        return False

    def _goal_for(self, world: Any, j: int, rng: np.random.Generator) -> np.ndarray | None:
        o = world.objects[j]
        half = o.size[[0, 2]] / 2
        for _ in range(8):
            a = rng.uniform(0, 2 * np.pi)
            r = rng.uniform(0.3, 0.6)
            g = o.center[[0, 2]] + r * np.array([np.sin(a), np.cos(a)])
            if o.parent is not None:  # stay on the furniture's top
                p = world.object(o.parent)
                if not ((p.lo[[0, 2]] + half <= g).all() and (g <= p.hi[[0, 2]] - half).all()):
                    continue
            if self._sim.object_blocker(0, j, float(g[0]), float(o.center[1]), float(g[1])) is None:
                return g
        return None

    # -- observations ------------------------------------------------------------------------
    def _distance(self) -> float:
        c = self._sim.worlds[0].objects[self._index].center
        return float(np.linalg.norm(c[[0, 2]] - self._goal))

    def _obs(self) -> dict[str, np.ndarray]:
        out, _ = self._sim.render()
        inst = out.inst[0].cpu().numpy()
        o = self._sim.worlds[0].objects[self._index]
        off = self._goal - o.center[[0, 2]]
        yaw = np.radians(self._yaw)
        right = off[0] * np.cos(yaw) - off[1] * np.sin(yaw)
        ahead = off[0] * np.sin(yaw) + off[1] * np.cos(yaw)
        gx, gy = self._project(np.array([self._goal[0], o.lo[1], self._goal[1]]))
        return {
            "image": out.rgb[0].cpu().numpy().copy(),
            "mask": (inst == self._index).astype(np.uint8)[..., None] * np.uint8(255),
            "goal": np.clip(np.array([right, ahead, gx, gy], dtype=np.float32), -10.0, 10.0),
        }

    def _project(self, p: np.ndarray) -> tuple[float, float]:
        """Image point (x, y in [0, 1] inside the frame) of world point p."""
        from thorgym.sim.render import project_points

        sim = self._sim
        pose = sim.pos[0, 0].cpu().numpy().astype(np.float64)
        uv, _ = project_points(p, np.array([*pose, self._yaw, 30.0]), self.size, self.size, sim.field_of_view)
        return float(uv[0, 0]) / self.size, float(uv[0, 1]) / self.size

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        scene = options.get("scene") if options else None
        if scene is not None and scene not in self._scenes:
            raise ValueError(f"options['scene'] {scene!r} is not a {self.split} scene: {self._scenes}")
        while True:
            pick = scene or self._scenes[int(self.np_random.integers(len(self._scenes)))]
            if self._setup(pick):
                break
            scene = None  # that scene had nothing to push in view: draw another
        self._pushes = 0
        self._dist = self._distance()
        return self._obs(), self._info(False, False)

    def _info(self, success: bool, fell: bool) -> dict[str, Any]:
        o = self._sim.worlds[0].objects[self._index]
        return {"distance": self._dist, "success": success, "fell": fell, "pushes": self._pushes,
                "scene": self._sim.worlds[0].spec.name, "object_id": o.object_id}  # fmt: skip

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        from thorgym.sim.physics import max_push_magnitude, push_direction

        if self._sim is None or self._index < 0:
            raise RuntimeError("ForcePushEnv.step called before reset(); call env.reset() first")
        a = np.asarray(action)
        if a.shape != (2,) or not self.action_space.contains(a.astype(np.int64)):
            raise ValueError(f"action must be [direction 0-7, magnitude 0-4], got {action!r}")
        world = self._sim.worlds[0]
        magnitude = min(float(MAGNITUDES[int(a[1])]), max_push_magnitude(world, self._index))
        direction = push_direction(self._yaw, float(self.ANGLES[int(a[0])]))
        self._sim.push_objects([0], [self._index], direction, magnitude)
        self._pushes += 1
        before, self._dist = self._dist, self._distance()
        o = world.objects[self._index]
        fell = float(o.center[1]) < self._start_y - 0.05
        success = not fell and self._dist < self.goal_radius
        reward = (before - self._dist) - 0.01 + (1.0 if success else 0.0)
        terminated = success or fell
        truncated = not terminated and self._pushes >= self.max_pushes
        return self._obs(), float(reward), terminated, truncated, self._info(success, fell)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._sim is None:
            return None
        obs = self._obs()
        img = obs["image"].astype(np.float32)
        m = obs["mask"][..., 0] > 0
        img[m] = 0.5 * img[m] + 0.5 * np.array([255.0, 40.0, 40.0])
        gx, gy = obs["goal"][2], obs["goal"][3]
        if 0 <= gx < 1 and 0 <= gy < 1:
            r, c = int(gy * self.size), int(gx * self.size)
            img[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = (40.0, 255.0, 40.0)
        return img.astype(np.uint8)

    def close(self) -> None:
        self._sims.clear()
