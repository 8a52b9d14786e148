"""The agents `thorgym train` and `thorgym eval` know: how each is trained and loaded as a policy.

Each entry names its implementation lazily (the import happens inside the function), so
importing the registry imports neither torch nor Stable-Baselines3. Add an agent with
:func:`register_agent`; look one up with :func:`get_agent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .train_args import DEFAULT_AGENT, TrainArgs

if TYPE_CHECKING:
    from .policy import EvalContext, Policy

__all__ = ["DEFAULT_AGENT", "AgentSpec", "agent_names", "get_agent", "register_agent"]


@dataclass(frozen=True)
class AgentSpec:
    """One agent: ``train`` runs `thorgym train` (None: nothing to train) and returns the final
    checkpoint; ``load_policy`` builds the evaluation policy from a checkpoint file (None for
    agents without one). ``checkpoint_suffixes`` are the checkpoint formats its loader reads, the
    first being the one its trainer writes; a run directory resolves to one of them."""

    name: str
    description: str
    train: Callable[[TrainArgs], Path] | None
    load_policy: Callable[[Path | None, EvalContext], Policy]
    checkpoint_suffixes: tuple[str, ...] = ()
    needs_checkpoint: bool = True

    @property
    def checkpoint_suffix(self) -> str | None:
        """The format its trainer writes (None for agents without checkpoints)."""
        return self.checkpoint_suffixes[0] if self.checkpoint_suffixes else None


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(spec: AgentSpec) -> AgentSpec:
    """Add ``spec`` to the registry; a second agent of the same name is an error."""
    if spec.name in _AGENTS:
        raise ValueError(f"agent {spec.name!r} is already registered; pick another name")
    if spec.needs_checkpoint and not spec.checkpoint_suffixes:
        raise ValueError(f"agent {spec.name!r} needs a checkpoint but names no checkpoint_suffixes")
    _AGENTS[spec.name] = spec
    return spec


def get_agent(name: str) -> AgentSpec:
    """The agent registered as ``name``; unknown names are a ValueError listing the known ones."""
    try:
        return _AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}: choose one of {', '.join(agent_names())}") from None


def agent_names() -> list[str]:
    """Registered agent names, in registration order."""
    return list(_AGENTS)


# -- the built-in agents (implementations imported on use) ------------------------------------


def _train_sb3_recurrent(args: TrainArgs) -> Path:
    from . import sb3_ppo

    return sb3_ppo.train(args, recurrent=True)


def _train_sb3_ff(args: TrainArgs) -> Path:
    from . import sb3_ppo

    return sb3_ppo.train(args, recurrent=False)


def _load_sb3(path: Path | None, ctx: EvalContext) -> Policy:
    from . import sb3_ppo

    return sb3_ppo.load_policy(path, ctx)


def _train_ppo(args: TrainArgs) -> Path:
    from . import batched_ppo

    return batched_ppo.train(args)


def _load_ppo(path: Path | None, ctx: EvalContext) -> Policy:
    from . import batched_ppo

    return batched_ppo.load_policy(path, ctx)


def _train_savn(args: TrainArgs) -> Path:
    from .savn.trainer import train_savn

    return train_savn(args)


def _load_savn(path: Path | None, ctx: EvalContext) -> Policy:
    from .savn.policy import load_savn

    return load_savn(path, ctx)


def _load_nonadaptive(path: Path | None, ctx: EvalContext) -> Policy:
    from .savn.policy import load_nonadaptive

    return load_nonadaptive(path, ctx)


def _load_random(path: Path | None, ctx: EvalContext) -> Policy:
    from .baselines import load_random

    return load_random(path, ctx)


def _load_oracle(path: Path | None, ctx: EvalContext) -> Policy:
    from .baselines import load_oracle

    return load_oracle(path, ctx)


register_agent(
    AgentSpec(
        "ppo-sb3",
        "recurrent PPO (sb3-contrib RecurrentPPO, LSTM 256)",
        _train_sb3_recurrent,
        _load_sb3,
        (".zip",),
    )
)
register_agent(
    AgentSpec("ppo-ff", "feed-forward PPO (Stable-Baselines3)", _train_sb3_ff, _load_sb3, (".zip",))
)
register_agent(
    AgentSpec(
        "ppo",
        "batched recurrent PPO (thorgym.agents.ppo; ppo-sb3 where that is not built; loads .zip via SB3)",
        _train_ppo,
        _load_ppo,
        (".pt", ".zip"),
    )
)
register_agent(
    AgentSpec(
        "savn",
        "SAVN meta-RL with test-time adaptation (Wortsman et al. 2019)",
        _train_savn,
        _load_savn,
        (".pt",),
    )
)
register_agent(
    AgentSpec(
        "nonadaptive",
        "the SAVN network without adaptation (A3C)",
        _train_savn,
        _load_nonadaptive,
        (".pt",),
    )
)
register_agent(AgentSpec("random", "uniform random actions", None, _load_random, needs_checkpoint=False))
register_agent(
    AgentSpec("oracle", "shortest path to the target, then Done", None, _load_oracle, needs_checkpoint=False)
)
