"""The reference rows of every table: uniform random actions and the shortest-path oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .policy import EvalContext

if TYPE_CHECKING:
    from .policy import EnvHandle

DONE = 5  # ObjectNav's Done action index


class RandomPolicy:
    """Uniform over the six ObjectNav actions, from its own seeded generator."""

    name = "random"
    checkpoint: Path | None = None
    train_args: Mapping[str, object] = {}

    def __init__(self, seed: int = 0, num_actions: int = 6) -> None:
        self.rng = np.random.default_rng(seed)
        self.num_actions = num_actions
        self.n = 1

    def reset(self, n: int) -> None:
        self.n = n

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray:
        return self.rng.integers(self.num_actions, size=len(episode_start))


class OraclePolicy:
    """Follows a shortest path in the pose graph to a pose that sees the target, then Done."""

    name = "oracle"
    checkpoint: Path | None = None
    train_args: Mapping[str, object] = {}

    def reset(self, n: int) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray:
        n = len(episode_start)
        if env is None:
            raise ValueError("the oracle reads the environment: pass env to act()")
        envs = list(env) if isinstance(env, Sequence) else [env]
        if len(envs) != n:
            raise ValueError(f"the oracle got {len(envs)} env(s) for a batch of {n}: pass one env per row")
        return np.array([self._one(e) for e in envs], dtype=np.int64)

    @staticmethod
    def _one(env: object) -> int:
        return int(env.unwrapped.expert_action())  # type: ignore[attr-defined]


def load_random(path: Path | None, ctx: EvalContext) -> RandomPolicy:
    return RandomPolicy(ctx.seed)


def load_oracle(path: Path | None, ctx: EvalContext) -> OraclePolicy:
    return OraclePolicy()
