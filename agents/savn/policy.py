"""SAVN and non-adaptive checkpoints as evaluation policies.

A SAVN policy adapts at test time exactly as in training (the paper's point): its fast weights
are reset to the trained initial weights at every episode start, and after every 6th action one
SGD step on the learned interaction loss updates them, at most 4 per episode. Actions are sampled
from the policy with a generator seeded by ``seed``, or taken by argmax with ``deterministic``.

Observations: cached ``features`` (the cached ObjectNav env, ``C·G·G`` per env) are reshaped to
the network's ``C × G × G`` input; ``rgb`` frames are encoded by the checkpoint's frozen backbone.
Either works for a checkpoint of either training mode, as long as the features come from the same
backbone weights, frame size and grid (``train_args``: ``backbone``, ``width``, ``grid``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from thorgym.agents.backbones import build_backbone
from thorgym.rundir import resolve_device

from ..policy import EvalContext
from .adapt import FastWeightLearner
from .checkpoint import load_savn_checkpoint
from .model import SAVNConfig, SAVNNet, SpatialBackbone
from .trainer import observation_tensors

if TYPE_CHECKING:
    from ..policy import EnvHandle

__all__ = ["SAVNPolicy", "load_nonadaptive", "load_savn"]


class SAVNPolicy:
    """A checkpoint of `thorgym train objectnav --agent savn|nonadaptive` acting in n envs.

    ``adapt`` defaults to the checkpoint's agent (SAVN adapts, non-adaptive does not);
    ``adapt=False`` on a SAVN checkpoint is the no-test-time-adaptation ablation. The inner loop
    steps all n environments together, so their episodes must start together.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        seed: int = 0,
        deterministic: bool = False,
        adapt: bool | None = None,
    ) -> None:
        self.checkpoint: Path | None = Path(path)
        self.device = resolve_device(device)
        ckpt = load_savn_checkpoint(path, self.device)
        self.meta: dict[str, Any] = json.loads(ckpt["meta_json"])
        self.name = str(ckpt["agent"])
        self.mode = str(ckpt.get("mode", "online"))  # the observations it was trained on
        targs = dict(self.meta.get("args", {}))
        bb_info = ckpt["backbone"]
        if "ckpt" in bb_info:
            # what evaluation needs to serve this policy's features: the backbone weights the run
            # resolved (args hold only what was given), the mode and the grid it trained with
            targs.update(backbone_ckpt=bb_info["ckpt"], grid=bb_info["grid"], mode=ckpt.get("mode", "online"))
        self.train_args: Mapping[str, object] = targs
        if adapt is None:
            adapt = self.name == "savn"
        if adapt and self.name != "savn":
            raise ValueError(
                f"{path} is a {self.name!r} checkpoint without a trained interaction loss; "
                "evaluate it with --agent nonadaptive"
            )
        self.adapt = adapt
        self.deterministic = deterministic
        config = SAVNConfig.from_dict(ckpt["config"])
        self.backbone_info: dict[str, Any] = dict(ckpt["backbone"])
        bb = build_backbone(ckpt["backbone"]["name"])
        bb.load_state_dict(ckpt["backbone_state"])
        self.spatial = SpatialBackbone(bb.to(self.device), config.grid)
        self.net = SAVNNet(config).to(self.device)
        self.net.load_state_dict(ckpt["model"])
        self.net.eval()
        self.inner_lr = float(self.train_args.get("inner_lr", 1e-4))  # type: ignore[arg-type]
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.reset(1)

    def cached_env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``gymnasium.make_vec("thorgym/ObjectNav-v1", ...)`` (or of
        :class:`thorgym.envs.cached.CachedObjectNavVectorEnv`) for a cached env whose ``features``
        are this policy's: the backbone, its weights, frame size and grid it was trained with."""
        bb = self.backbone_info
        return {
            "cached": True,
            "backbone": bb["name"],
            "backbone_ckpt": bb.get("ckpt"),
            "size": int(bb.get("size", self.train_args.get("width", 64))),  # type: ignore[arg-type]
            "grid": int(bb["grid"]),
        }

    def reset(self, n: int) -> None:
        """Act for n environments; all start a new episode."""
        self.learner = FastWeightLearner(
            self.net,
            n,
            adaptive=self.adapt,
            inner_lr=self.inner_lr,
            first_order=True,  # no meta-gradient at test time; the update values are identical
        )

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray:
        start = np.asarray(episode_start, dtype=bool)
        if len(start) != self.learner.num_envs:
            self.reset(len(start))
        elif start.all():
            # episode start: fast weights back to the trained initial weights, LSTM state cleared
            self.learner.reset()
        elif start.any():
            raise ValueError(
                "SAVN adapts all environments in step, so their episodes must start together: "
                "got episode_start with some but not all set; evaluate with one env per policy"
            )
        feats, emb = observation_tensors(obs, self.spatial, self.net.config.grid, self.device)
        with torch.enable_grad():  # the inner steps need the episode's graph, even under no_grad
            logits, _ = self.learner.act(feats, emb)
        if self.deterministic:
            action = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.detach(), -1)
            action = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
        # the episode continues unless this action is Done; adapt after every 6th action
        with torch.enable_grad():
            self.learner.maybe_adapt(torch.ones(len(start), dtype=torch.bool, device=self.device))
        return action.cpu().numpy()

    @property
    def inner_steps(self) -> np.ndarray:
        """Inner (adaptation) steps taken in the current episode, per environment."""
        return self.learner.updates.cpu().numpy()


def load_savn(path: Path | None, ctx: EvalContext) -> SAVNPolicy:
    if path is None:
        raise ValueError("--agent savn needs --checkpoint (a .pt file or its run directory)")
    return SAVNPolicy(path, device=ctx.device, seed=ctx.seed, deterministic=ctx.deterministic, adapt=True)


def load_nonadaptive(path: Path | None, ctx: EvalContext) -> SAVNPolicy:
    if path is None:
        raise ValueError("--agent nonadaptive needs --checkpoint (a .pt file or its run directory)")
    return SAVNPolicy(path, device=ctx.device, seed=ctx.seed, deterministic=ctx.deterministic, adapt=False)
