"""The interface every evaluated agent implements, and what evaluation tells the loader.

A policy acts for ``n`` environments at once: :meth:`Policy.reset` sets ``n`` before the first
step, and each :meth:`Policy.act` gets a batch of observations (leading axis ``n``) with the
``episode_start`` flags (True on the first step of an episode: recurrent state and fast weights
start afresh there). The oracle reads the environment (its pose graph), so ``env`` is passed too:
the single env when ``n == 1``, else a sequence of ``n`` envs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import gymnasium
    import numpy as np

    EnvHandle: TypeAlias = gymnasium.Env | Sequence[gymnasium.Env] | None

__all__ = ["EvalContext", "Policy"]


@dataclass(frozen=True)
class EvalContext:
    """What `thorgym eval` asks of a loaded policy: device, sampling seed, argmax or not."""

    device: str = "cpu"
    seed: int = 0
    deterministic: bool = False


class Policy(Protocol):
    """A batched policy; ``train_args`` is the training run's arguments ({} for random/oracle),
    from which evaluation takes the frame size the policy was trained on."""

    name: str
    checkpoint: Path | None
    train_args: Mapping[str, object]

    def reset(self, n: int) -> None: ...

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray: ...
