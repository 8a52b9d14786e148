"""Registry adapter of the batched PPO trainer (:mod:`thorgym.agents.ppo`) for ``--agent ppo``.

``thorgym.agents.ppo`` trains on the natively batched vector env (``gymnasium.make_vec``) with its
own rollout storage and writes ``OUT/checkpoints/ckpt_<steps>.pt`` and ``OUT/final.pt``. Until that
module is part of the build, ``--agent ppo`` trains and loads what it always meant: the
recurrent Stable-Baselines3 PPO (``ppo-sb3``); ``.zip`` checkpoints always load through SB3.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thorgym.rundir import RunDir, read_json, write_learning_curve

from .policy import EvalContext, Policy
from .train_args import TrainArgs

if TYPE_CHECKING:
    from .policy import EnvHandle

EXT = ".pt"
MODULE = "thorgym.agents.ppo"


def available() -> bool:
    """Whether the batched PPO trainer is importable in this build."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:
        return False


def train(args: TrainArgs) -> Path:
    if not available():
        from . import sb3_ppo

        print(f"note: {MODULE} is not in this build; --agent ppo trains the recurrent SB3 PPO (ppo-sb3)")
        return sb3_ppo.train(args, recurrent=True)
    import gymnasium
    from thorgym.agents.ppo import PPOConfig
    from thorgym.agents.ppo import train as ppo_train

    cfg = PPOConfig(
        envs=args.envs,
        steps=args.steps,
        rollout=args.n_steps,
        epochs=args.epochs,
        minibatches=_minibatches(args.envs),
        lr=args.lr,
        backbone=args.backbone,
        backbone_ckpt=args.backbone_ckpt,
        freeze_backbone=args.freeze_backbone,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
    )
    kw: dict[str, Any] = {
        "split": "train",
        "width": args.width,
        "height": args.height,
        "max_steps": args.max_steps,
        "backend": args.backend,
    }
    if args.room_types:
        kw["room_types"] = list(args.room_types)
    run = RunDir(args.out, EXT)
    args.out.mkdir(parents=True, exist_ok=True)
    run.write_args(args.to_json())
    env = gymnasium.make_vec(args.env_id, num_envs=args.envs, **kw)
    try:
        final = ppo_train(env, cfg, args.out, resume=args.resume)
    finally:
        env.close()
    write_learning_curve(args.out)
    return final


def _minibatches(envs: int, most: int = 4) -> int:
    """Minibatches split the environments, so their count must divide ``envs``: the largest
    divisor up to ``most``."""
    return max(k for k in range(1, min(most, envs) + 1) if envs % k == 0)


class BatchedPPOPolicy:
    """A ``thorgym.agents.ppo`` checkpoint behind the evaluation :class:`Policy` interface."""

    name = "ppo"

    def __init__(self, path: Path, ctx: EvalContext) -> None:
        import torch
        from thorgym.agents.ppo import load_policy

        torch.manual_seed(ctx.seed)  # the policy samples with torch's global generator
        self.checkpoint: Path | None = path
        self.inner = load_policy(path, device=ctx.device)
        self.deterministic = ctx.deterministic
        root = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        self.train_args: Mapping[str, object] = read_json(RunDir(root, EXT).args_file)

    def reset(self, n: int) -> None:
        self.inner.reset(n)

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray:
        return np.asarray(self.inner.act(obs, episode_start, deterministic=self.deterministic))


def load_policy(path: Path | None, ctx: EvalContext) -> Policy:
    if path is None:
        raise ValueError("--agent ppo needs --checkpoint (a checkpoint file or its run directory)")
    if path.suffix == ".zip":  # runs of the SB3 trainer, which --agent ppo used to be
        from . import sb3_ppo

        return sb3_ppo.load_policy(path, ctx)
    if not available():
        raise ValueError(
            f"{path} needs {MODULE}, which is not in this build; "
            "pass an SB3 .zip checkpoint or --agent ppo-sb3"
        )
    return BatchedPPOPolicy(path, ctx)
