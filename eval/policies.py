"""Policies that :func:`thorgym.eval.evaluate` runs: trained checkpoints, random and oracle.

A policy is an object with ``reset()`` (called at each episode start) and
``act(obs, env) -> int``; it may read the env (the oracle reads the pose graph).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DONE = 5  # ObjectNav's Done action index


class Policy(Protocol):
    name: str

    def reset(self) -> None: ...

    def act(self, obs: dict[str, Any], env: Any) -> int: ...


class RandomPolicy:
    """Uniform over the six ObjectNav actions, from its own seeded generator."""

    name = "random"

    def __init__(self, seed: int = 0, num_actions: int = 6) -> None:
        self.rng = np.random.default_rng(seed)
        self.num_actions = num_actions

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, Any], env: Any) -> int:
        return int(self.rng.integers(self.num_actions))


class OraclePolicy:
    """Follows a shortest path in the pose graph to a pose that sees the target, then Done."""

    name = "oracle"

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, Any], env: Any) -> int:
        return env.unwrapped.expert_action()


class CheckpointPolicy:
    """A trained Stable-Baselines3 policy; keeps the LSTM state of recurrent ones per episode.

    Actions are sampled from the policy (``deterministic=False``, the default: argmax policies
    tend to loop in navigation) from generators seeded by ``seed``, so runs are reproducible.
    """

    def __init__(
        self, path: str | os.PathLike, device: str = "cpu", seed: int = 0, deterministic: bool = False
    ) -> None:
        self.path = resolve_checkpoint(path)
        self.model, self.meta = load_checkpoint(self.path, device)
        self.model.set_random_seed(seed)
        self.name = self.meta.get("agent", "ppo")
        self.recurrent = self.meta.get("algo") == "RecurrentPPO"
        self.deterministic = deterministic
        self._state: Any = None
        self._start = True

    def reset(self) -> None:
        self._state, self._start = None, True

    def act(self, obs: dict[str, Any], env: Any) -> int:
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        if self.recurrent:
            action, self._state = self.model.predict(
                batch,
                state=self._state,
                episode_start=np.array([self._start]),
                deterministic=self.deterministic,
            )
            self._start = False
        else:
            action, _ = self.model.predict(batch, deterministic=self.deterministic)
        return int(np.asarray(action).reshape(-1)[0])


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory (then its latest checkpoint)."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("checkpoints/ckpt_*.zip")) or sorted(p.glob("ckpt_*.zip"))
        found = found or sorted(p.glob("checkpoints/ckpt_*.pt"))  # SAVN / non-adaptive runs
        for final in (p / "final.zip", p / "final.pt"):
            if final.exists():
                return final
        if not found:
            raise FileNotFoundError(
                f"no checkpoint in run directory {p}: expected final.zip|.pt or checkpoints/ckpt_*.zip|.pt "
                "(train one with `thorgym train objectnav --out DIR`)"
            )
        return found[-1]
    if not p.exists():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist: pass a .zip written by `thorgym train` or its run directory"
        )
    return p


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load an SB3 PPO checkpoint written by `thorgym train` (tensors via weights_only loads)."""
    import json

    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"checkpoint {path} is corrupt or not a thorgym/SB3 checkpoint (not a zip "
            "archive); re-train or pass another file"
        )
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("algo") == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO as algo
    else:
        from stable_baselines3 import PPO as algo
    try:
        model = algo.load(path, device=device)
    except Exception as e:  # SB3 raises assorted errors on damaged archives
        raise ValueError(
            f"checkpoint {path} could not be loaded ({type(e).__name__}: {e}); "
            "it is corrupt or was written by an incompatible version"
        ) from e
    return model, meta
