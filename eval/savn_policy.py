"""SAVN and non-adaptive checkpoints as :func:`thorgym.eval.objectnav.evaluate` policies.

A SAVN policy adapts at test time exactly as in training (the paper's point): its fast weights
are reset to the trained initial weights at every episode start (:meth:`SAVNPolicy.reset`), and
after every 6th action one SGD step on the learned interaction loss updates them, at most 4 per
episode. Actions are sampled from the policy with a generator seeded by ``seed`` (as
:class:`~thorgym.eval.policies.CheckpointPolicy`), or taken by argmax with ``deterministic``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from thorgym.agents.backbones import build_backbone
from thorgym.agents.savn import FastWeightLearner, SAVNConfig, SAVNNet, SpatialBackbone

__all__ = ["SAVNPolicy"]


class SAVNPolicy:
    """A checkpoint of `thorgym train objectnav --agent savn|nonadaptive` acting in one env.

    ``adapt`` defaults to the checkpoint's agent (SAVN adapts, non-adaptive does not);
    ``adapt=False`` on a SAVN checkpoint is the no-test-time-adaptation ablation.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        seed: int = 0,
        deterministic: bool = False,
        adapt: bool | None = None,
    ) -> None:
        from thorgym.train_savn import load_savn_checkpoint

        self.path = Path(path)
        ckpt = load_savn_checkpoint(self.path, device)
        self.meta: dict[str, Any] = json.loads(ckpt["meta_json"])
        self.name = str(ckpt["agent"])
        if adapt is None:
            adapt = self.name == "savn"
        if adapt and self.name != "savn":
            raise ValueError(
                f"{self.path} is a {self.name!r} checkpoint without a trained interaction loss; "
                "evaluate it with --agent nonadaptive"
            )
        self.adapt = adapt
        self.device = device
        self.deterministic = deterministic
        config = SAVNConfig.from_dict(ckpt["config"])
        bb = build_backbone(ckpt["backbone"]["name"])
        bb.load_state_dict(ckpt["backbone_state"])
        self.spatial = SpatialBackbone(bb.to(device), config.grid)
        self.net = SAVNNet(config).to(device)
        self.net.load_state_dict(ckpt["model"])
        self.net.eval()
        args = self.meta.get("args", {})
        self.learner = FastWeightLearner(
            self.net,
            1,
            adaptive=adapt,
            inner_lr=float(args.get("inner_lr", 1e-4)),
            first_order=True,  # no meta-gradient at test time; the update values are identical
        )
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def reset(self) -> None:
        """Episode start: fast weights back to the trained initial weights, LSTM state cleared."""
        self.learner.reset()

    def act(self, obs: dict[str, Any], env: Any) -> int:
        rgb = torch.from_numpy(np.asarray(obs["rgb"])[None]).to(self.device)
        emb = torch.from_numpy(np.asarray(obs["target_embedding"], dtype=np.float32)[None]).to(self.device)
        with torch.enable_grad():  # the inner steps need the episode's graph, even under no_grad
            logits, _ = self.learner.act(self.spatial(rgb), emb)
        if self.deterministic:
            action = int(logits.argmax(-1).item())
        else:
            probs = torch.softmax(logits.detach(), -1)
            action = int(torch.multinomial(probs, 1, generator=self.gen).item())
        # the episode continues unless this action is Done; adapt after every 6th action
        with torch.enable_grad():
            self.learner.maybe_adapt(torch.ones(1, dtype=torch.bool, device=self.device))
        return action

    @property
    def inner_steps(self) -> int:
        """Inner (adaptation) steps taken in the current episode."""
        return int(self.learner.updates[0])
