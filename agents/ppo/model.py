"""The recurrent actor-critic of :mod:`thorgym.agents.ppo.trainer`.

Per step: a visual vector (``features`` (D,) from a frozen-backbone cache, or an encoded
``rgb`` frame), a learned target embedding, the GloVe ``target_embedding`` when present and
the previous action → one linear layer → GRU (or LSTM) cell → actor logits and critic value.
The recurrent core is a cell stepped in Python: the same code acts (T = 1) and re-evaluates
whole rollout sequences in the update, with the state zeroed at episode starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import torch
from torch import nn

__all__ = ["PolicySpec", "RecurrentActorCritic", "spec_from_space"]


@dataclass(frozen=True)
class PolicySpec:
    """Everything needed to rebuild the network (kept in checkpoints)."""

    num_actions: int
    num_targets: int
    feature_dim: int = 0  # > 0: a `features` observation of this size
    rgb_shape: tuple[int, int, int] | None = None  # (H, W, 3): an `rgb` observation
    glove_dim: int = 0  # > 0: a `target_embedding` observation of this size
    hidden: int = 128
    rnn: str = "gru"
    backbone: str = "cnn_small"
    freeze_backbone: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicySpec:
        d = dict(d)
        if d.get("rgb_shape") is not None:
            d["rgb_shape"] = tuple(d["rgb_shape"])
        return cls(**d)


def spec_from_space(
    obs_space: gym.spaces.Dict,
    action_space: gym.spaces.Discrete,
    *,
    hidden: int = 128,
    rnn: str = "gru",
    backbone: str = "cnn_small",
    freeze_backbone: bool = False,
) -> PolicySpec:
    """The :class:`PolicySpec` of a single-environment observation/action space."""
    if not isinstance(obs_space, gym.spaces.Dict):
        raise ValueError(f"PPO needs a Dict observation space, got {type(obs_space).__name__}")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"PPO needs a Discrete action space, got {type(action_space).__name__}")
    if rnn not in ("gru", "lstm"):
        raise ValueError(f"rnn must be 'gru' or 'lstm', got {rnn!r}")
    keys = set(obs_space.spaces)
    if ("features" in keys) == ("rgb" in keys):
        raise ValueError(f"the observation needs exactly one of 'features' or 'rgb', got keys {sorted(keys)}")
    if "target" not in keys or not isinstance(obs_space["target"], gym.spaces.Discrete):
        raise ValueError("the observation needs a Discrete 'target' entry")
    feature_dim = int(obs_space["features"].shape[-1]) if "features" in keys else 0
    rgb_shape = tuple(int(s) for s in obs_space["rgb"].shape) if "rgb" in keys else None
    glove = int(obs_space["target_embedding"].shape[-1]) if "target_embedding" in keys else 0
    return PolicySpec(
        num_actions=int(action_space.n),
        num_targets=int(obs_space["target"].n),
        feature_dim=feature_dim,
        rgb_shape=rgb_shape,
        glove_dim=glove,
        hidden=hidden,
        rnn=rnn,
        backbone=backbone,
        freeze_backbone=freeze_backbone,
    )


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class RecurrentActorCritic(nn.Module):
    """Actor-critic over ``features``/``rgb`` + ``target`` (+ ``target_embedding``).

    ``visual(obs)`` turns the image part into a vector; with a frozen (or no) backbone the
    trainer stores that vector in the rollout instead of the frame (``visual_is_frozen``).
    """

    TARGET_DIM = 32
    ACTION_DIM = 16

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        self.spec = spec
        h = spec.hidden
        self.backbone: nn.Module | None = None
        if spec.rgb_shape is not None:
            from thorgym.agents.backbones import build_backbone

            self.backbone = build_backbone(spec.backbone)
            if spec.freeze_backbone:
                self.backbone.requires_grad_(False)
            vis_dim = self.backbone.out_dim
        else:
            vis_dim = spec.feature_dim
        self.visual_dim = vis_dim
        self.target = nn.Embedding(spec.num_targets, self.TARGET_DIM)
        self.glove = _init(nn.Linear(spec.glove_dim, self.TARGET_DIM), 1.0) if spec.glove_dim else None
        # Index num_actions stands for "no previous action" (episode start).
        self.prev_action = nn.Embedding(spec.num_actions + 1, self.ACTION_DIM)
        fused = vis_dim + self.TARGET_DIM * (2 if self.glove is not None else 1) + self.ACTION_DIM
        self.fuse = nn.Sequential(nn.LayerNorm(fused), _init(nn.Linear(fused, h), 2**0.5), nn.ReLU())
        self.cell: nn.GRUCell | nn.LSTMCell = nn.GRUCell(h, h) if spec.rnn == "gru" else nn.LSTMCell(h, h)
        self.actor = _init(nn.Linear(h, spec.num_actions), 0.01)
        self.critic = _init(nn.Linear(h, 1), 1.0)

    @property
    def visual_is_frozen(self) -> bool:
        return self.backbone is None or self.spec.freeze_backbone

    @property
    def state_size(self) -> int:
        """Width of the flat recurrent state: hidden (GRU) or hidden + cell (LSTM)."""
        return self.spec.hidden * (1 if self.spec.rnn == "gru" else 2)

    def visual(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, visual_dim) float: the backbone on ``rgb`` (B, H, W, 3) uint8, or ``features``."""
        if self.backbone is None:
            return obs["features"].float()
        rgb = obs["rgb"].permute(0, 3, 1, 2)
        if self.spec.freeze_backbone:
            self.backbone.eval()
            with torch.no_grad():
                return self.backbone(rgb)
        return self.backbone(rgb)

    def _inputs(self, vis: torch.Tensor, obs: dict[str, torch.Tensor], prev: torch.Tensor) -> torch.Tensor:
        parts = [vis, self.target(obs["target"].long())]
        if self.glove is not None:
            parts.append(self.glove(obs["target_embedding"].float()))
        parts.append(self.prev_action(prev.long()))
        return self.fuse(torch.cat(parts, -1))

    def _cell(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.spec.rnn == "gru":
            h = self.cell(x, state)
            return h, h
        hs, cs = state.chunk(2, -1)
        h, c = self.cell(x, (hs, cs))
        return h, torch.cat([h, c], -1)

    def forward_sequence(
        self,
        vis: torch.Tensor,
        obs: dict[str, torch.Tensor],
        prev: torch.Tensor,
        starts: torch.Tensor,
        state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run T steps for B environments.

        Args:
            vis: (T, B, visual_dim); obs: entries (T, B, ...); prev: (T, B) previous actions
            (``num_actions`` at an episode start); starts: (T, B) bool, the state is zeroed
            before the step; state: (B, state_size) before the first step.

        Returns: logits (T, B, A), values (T, B), the state after the last step.
        """
        t_len, b = starts.shape
        flat = {k: v.reshape(t_len * b, *v.shape[2:]) for k, v in obs.items()}
        x = self._inputs(vis.reshape(t_len * b, -1), flat, prev.reshape(-1)).view(t_len, b, -1)
        keep = (~starts).unsqueeze(-1).to(x.dtype)
        outs = []
        for t in range(t_len):
            out, state = self._cell(x[t], state * keep[t])
            outs.append(out)
        hid = torch.stack(outs)
        return self.actor(hid), self.critic(hid).squeeze(-1), state
