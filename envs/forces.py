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

from thorgym.tasks.forces import FORCE_FEATURES, NUM_CLASSES, SPLITS, STEPS, force_encoding

__all__ = ["ForcePredictionEnv"]

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
