"""Registry adapter of the batched PPO trainer (:mod:`thorgym.agents.ppo`) for ``--agent ppo``.

``thorgym.agents.ppo`` trains on the natively batched vector env (``gymnasium.make_vec``) with its
own rollout storage and writes ``OUT/checkpoints/ckpt_<steps>.pt`` and ``OUT/final.pt``. Until that
module is part of the build, ``--agent ppo`` trains and loads what it always meant: the
recurrent Stable-Baselines3 PPO (``ppo-sb3``); ``.zip`` checkpoints always load through SB3.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thorgym.rundir import RunDir, read_json, stop_on_sigterm, write_learning_curve

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


PPO_HIDDEN = 128  # GRU size when neither the command line nor a preset sets --hidden
FEATURE_GRID = 3  # cached features: the frozen backbone's map pooled to 3×3 (64×3×3 for cnn_small)


def feature_backbone_ckpt(args: TrainArgs) -> str | None:
    """The frozen backbone of cached features: --backbone-ckpt, else the checkpoint thorgym ships
    for that backbone (``cnn_small``: pretrained on object presence), else random init (None)."""
    if args.backbone_ckpt is not None:
        return str(args.backbone_ckpt)
    from thorgym.agents.backbones.checkpoint import shipped_checkpoint

    p = shipped_checkpoint(args.backbone)
    return None if p is None else str(p)


def feature_settings(args: TrainArgs) -> dict[str, Any]:
    """The per-pose features a cached run trains on: ``backbone``, ``backbone_ckpt``, ``size``,
    ``grid`` (the keyword arguments of the cached env and of ``thorgym.envs.feature_cache.FeatureCache``)."""
    return {
        "backbone": args.backbone,
        "backbone_ckpt": feature_backbone_ckpt(args),
        "size": args.width,
        "grid": args.grid if args.given("grid") else FEATURE_GRID,
    }


def env_kwargs(args: TrainArgs, split: str = "train") -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make_vec(args.env_id, ...)`` for a run's mode."""
    kw: dict[str, Any] = {"split": split, "max_steps": args.max_steps}
    if args.room_types:
        kw["room_types"] = list(args.room_types)
    if args.scenes and split == "train":
        kw["scenes"] = list(args.scenes)
    if args.mode == "cached":
        if args.backend != "sim":
            raise ValueError("--mode cached runs on the built-in simulator's pose tables; use --mode online")
        kw.update(cached=True, **feature_settings(args))
    elif args.mode == "online":
        kw.update(width=args.width, height=args.height, backend=args.backend)
    else:
        raise ValueError(f"unknown --mode {args.mode!r}: use 'cached' or 'online'")
    return kw


def train(args: TrainArgs) -> Path:
    if not available():
        from . import sb3_ppo

        print(f"note: {MODULE} is not in this build; --agent ppo trains the recurrent SB3 PPO (ppo-sb3)")
        return sb3_ppo.train(args, recurrent=True)
    import dataclasses

    import gymnasium

    from thorgym.agents.ppo import PPOConfig
    from thorgym.agents.ppo import train as ppo_train

    # resolve the agent's own defaults now, so args.json records what the run really used
    args = dataclasses.replace(
        args,
        hidden=args.hidden if args.given("hidden") else PPO_HIDDEN,
        grid=args.grid if args.given("grid") else FEATURE_GRID,
        backbone_ckpt=feature_backbone_ckpt(args) if args.mode == "cached" else args.backbone_ckpt,
        explicit=args.explicit | {"hidden", "grid", "backbone_ckpt"},
    )
    cfg = PPOConfig(
        envs=args.envs,
        steps=args.steps,
        rollout=args.n_steps,
        epochs=args.epochs,
        minibatches=_minibatches(args.envs),
        lr=args.lr,
        anneal_lr=args.anneal_lr,
        straggler=args.straggler,
        hidden=args.hidden,
        backbone=args.backbone,
        backbone_ckpt=args.backbone_ckpt,
        freeze_backbone=args.freeze_backbone,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
    )
    main_process = int(os.environ.get("RANK", "0")) == 0  # torchrun: rank 0 writes the run's files
    with stop_on_sigterm():  # SIGTERM: checkpoint at the end of the update, exit (single process)
        if main_process:
            args.out.mkdir(parents=True, exist_ok=True)
            RunDir(args.out, EXT).write_args(args.to_json())
        env = gymnasium.make_vec(args.env_id, num_envs=args.envs, **env_kwargs(args))
        try:
            final = ppo_train(env, cfg, args.out, resume=args.resume)
        finally:
            env.close()
    if main_process:
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
