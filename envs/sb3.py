"""Stable-Baselines3 ``VecEnv`` adapter for thorgym's batched vector environments.

    from stable_baselines3 import PPO
    from thorgym.envs.sb3 import SB3VecEnv

    venv = SB3VecEnv.make("thorgym/ObjectNav-v0", num_envs=16, width=64, height=64)
    PPO("MultiInputPolicy", venv, n_steps=64).learn(10_000)

SB3 semantics: episodes reset in the step that ends them (Gymnasium's SAME_STEP autoreset); the
last observation of an ended episode is ``infos[i]["terminal_observation"]`` and
``infos[i]["TimeLimit.truncated"]`` is True when the step limit (not ``Done``) ended it; infos are
a list of per-environment dicts (``scene``, ``target``, ``success``, ``spl``, ``l_opt``,
``path_length``, …; at an episode end they describe the episode that ended).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

__all__ = ["SB3VecEnv"]


class SB3VecEnv(VecEnv):
    """Wrap a Gymnasium ``VectorEnv`` in SAME_STEP autoreset mode as an SB3 ``VecEnv``.

    Args:
        venv: the vector environment; its ``metadata["autoreset_mode"]`` must be SAME_STEP
            (use :meth:`make`).
    """

    def __init__(self, venv: VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3VecEnv needs a vector env with autoreset_mode=SAME_STEP, got "
                f"{mode!r}; build it with SB3VecEnv.make(...)"
            )
        self.venv = venv
        self.render_mode = getattr(venv, "render_mode", None)
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    @classmethod
    def make(cls, env_id: str = "thorgym/ObjectNav-v0", num_envs: int = 1, **kwargs: Any):
        """``gymnasium.make_vec(env_id, num_envs, autoreset_mode=SAME_STEP, **kwargs)`` wrapped."""
        import thorgym  # noqa: F401  (registers the environments)

        venv = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        return cls(venv)

    # -- VecEnv API ------------------------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        seeds = list(self._seeds)
        seed: Any = None if all(s is None for s in seeds) else seeds
        options = self._options[0] if self._options and self._options[0] else None
        obs, infos = self.venv.reset(seed=seed, options=options)
        self.reset_infos = self._split_infos(infos)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        out = self._split_infos(infos)
        final_obs = infos.get("final_obs")
        final_info = infos.get("final_info")
        ended_infos = self._split_infos(final_info) if final_info is not None else None
        for i in np.nonzero(dones)[0]:
            info = ended_infos[i] if ended_infos is not None else out[i]
            info["terminal_observation"] = final_obs[i] if final_obs is not None else None
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            out[i] = info
        return obs, np.asarray(rewards, dtype=np.float32), dones, out

    def _split_infos(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for k, v in infos.items():
            if k.startswith("_") or k in ("final_obs", "final_info"):
                continue
            mask = infos.get("_" + k)
            for i in range(self.num_envs):
                if mask is None or mask[i]:
                    x = v[i]
                    out[i][k] = x.item() if isinstance(x, np.generic) else x
        return out

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render() if self.render_mode == "rgb_array" else None
        return list(frames) if frames is not None else [None] * self.num_envs

    def _targets(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **kwargs)
        return [result for _ in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._targets(indices)]
