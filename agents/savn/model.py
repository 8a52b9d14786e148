"""The SAVN navigation network (Wortsman et al. 2019) as a functional module.

Architecture (the paper's, sizes in :class:`SAVNConfig`): a frozen registry backbone gives a
``C × G × G`` feature map → 1×1 conv to 64; the target word embedding → linear 64 and the
previous action distribution → linear 10, both tiled over the grid; concatenation → 1×1 conv 64
→ flatten → ``LSTMCell(64·G·G, 512)`` → actor (6 logits) and critic (1). Every layer after
the backbone is a ``nn.Linear`` (a 1×1 convolution is a linear map applied per grid cell), so
:func:`policy_step` can run it with *per-environment* weights: when a weight carries a leading
environment dimension ``(N, out, in)`` the layer is a batched matrix product (``baddbmm``),
otherwise a plain ``F.linear``. That is how SAVN's fast weights act for all environments in
one batched forward.

The backbone is not part of the adapted (or trained) parameters: :class:`SpatialBackbone` wraps
it frozen, in eval mode, under ``no_grad``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from thorgym.agents.backbones.spatial import SpatialBackbone

from .loss import InteractionLoss, InteractionLossConfig

__all__ = ["SAVNConfig", "SAVNNet", "SpatialBackbone", "heads", "lstm_cell", "lstm_input", "policy_step"]

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SAVNConfig:
    """Sizes of the SAVN network. Defaults are the paper's, except ``embed_dim``: thorgym's
    target embeddings are GloVe 6B 50-d where the paper used 300-d GloVe vectors."""

    feature_channels: int  # channels of the backbone feature map (512 for ResNet-18)
    grid: int = 7  # G: the feature map is average-pooled to G×G (ResNet-18 at 224 px gives 7×7)
    embed_dim: int = 50
    num_actions: int = 6
    visual_channels: int = 64
    target_channels: int = 64
    action_channels: int = 10
    fuse_channels: int = 64
    hidden: int = 512
    loss: InteractionLossConfig = field(default_factory=InteractionLossConfig)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["loss"]["channels"] = list(self.loss.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SAVNConfig:
        d = dict(d)
        loss = dict(d.pop("loss", {}))
        if "channels" in loss:
            loss["channels"] = tuple(loss["channels"])
        return cls(**d, loss=InteractionLossConfig(**loss))


class SAVNNet(nn.Module):
    """Parameters of the SAVN policy (``visual``, ``target``, ``action``, ``fuse``, ``lstm``,
    ``actor``, ``critic``) and of the learned interaction loss (``loss_net``).

    :meth:`policy_params` are the weights SAVN adapts in its inner loop and trains in the outer
    one; ``loss_net`` is trained only by the outer (meta) gradient.
    """

    def __init__(self, config: SAVNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.visual = nn.Linear(c.feature_channels, c.visual_channels)
        self.target = nn.Linear(c.embed_dim, c.target_channels)
        self.action = nn.Linear(c.num_actions, c.action_channels)
        fused_in = c.visual_channels + c.target_channels + c.action_channels
        self.fuse = nn.Linear(fused_in, c.fuse_channels)
        self.lstm = nn.LSTMCell(c.fuse_channels * c.grid * c.grid, c.hidden)
        self.actor = nn.Linear(c.hidden, c.num_actions)
        self.critic = nn.Linear(c.hidden, 1)
        self.loss_net = InteractionLoss(c.loss)
        # small actor init: a near-uniform initial policy (as the A3C reference code)
        nn.init.normal_(self.actor.weight, 0.0, 0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.zeros_(self.lstm.bias_ih)
        nn.init.zeros_(self.lstm.bias_hh)

    def policy_params(self) -> Params:
        """Name → parameter of the policy (everything but ``loss_net``)."""
        return {k: v for k, v in self.named_parameters() if not k.startswith("loss_net.")}

    def interaction_loss(self, history: torch.Tensor) -> torch.Tensor:
        """(N,) learned loss of ``history`` ``(N, window, hidden + num_actions)``."""
        return self.loss_net(history)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:func:`policy_step` with this module's own (shared) weights."""
        return policy_step(self.policy_params(), *args)


def _linear(x: torch.Tensor, params: Params, name: str) -> torch.Tensor:
    """``x @ W.T + b`` with W ``(out, in)`` shared or ``(N, out, in)`` per environment.

    x is ``(N, in)`` or ``(N, P, in)``.
    """
    w, b = params[name + ".weight"], params[name + ".bias"]
    if w.dim() == 2:
        return F.linear(x, w, b)
    squeeze = x.dim() == 2
    x3 = x.unsqueeze(1) if squeeze else x
    y = torch.baddbmm(b.unsqueeze(1), x3, w.transpose(1, 2))
    return y.squeeze(1) if squeeze else y


def policy_step(
    params: Params,
    features: torch.Tensor,
    target: torch.Tensor,
    prev_probs: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the SAVN policy for N environments.

    Args:
        params: :meth:`SAVNNet.policy_params`-named tensors, shared or with a leading N dim.
        features: ``(N, C, G, G)`` frozen backbone features.
        target: ``(N, embed_dim)`` target embedding.
        prev_probs: ``(N, num_actions)`` the previous step's action distribution (zeros at t=0).
        h, c: ``(N, hidden)`` LSTM state.

    Returns:
        logits ``(N, A)``, value ``(N,)``, new h, new c.
    """
    x = lstm_input(params, features, target, prev_probs)
    h, c = lstm_cell(_lstm_linear(x, h, params), c)
    logits, value = heads(params, h)
    return logits, value, h, c


def lstm_input(
    params: Params, features: torch.Tensor, target: torch.Tensor, prev_probs: torch.Tensor
) -> torch.Tensor:
    """The fused ``(N, fuse·G·G)`` LSTM input of :func:`policy_step`."""
    n, _, gh, gw = features.shape
    cells = gh * gw
    vis = F.relu(_linear(features.flatten(2).transpose(1, 2), params, "visual"))  # (N, GG, 64)
    tgt = F.relu(_linear(target, params, "target")).unsqueeze(1).expand(n, cells, -1)
    act = F.relu(_linear(prev_probs, params, "action")).unsqueeze(1).expand(n, cells, -1)
    return F.relu(_linear(torch.cat([vis, tgt, act], dim=2), params, "fuse")).reshape(n, -1)


def lstm_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """New (h, c) from the summed gate pre-activations (``nn.LSTMCell``'s gate order i, f, g, o)."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def heads(params: Params, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Actor logits ``(N, A)`` and critic value ``(N,)`` of the LSTM state."""
    return _linear(h, params, "actor"), _linear(h, params, "critic").squeeze(-1)


def _lstm_linear(x: torch.Tensor, h: torch.Tensor, params: Params) -> torch.Tensor:
    w_ih, w_hh = params["lstm.weight_ih"], params["lstm.weight_hh"]
    b = params["lstm.bias_ih"] + params["lstm.bias_hh"]
    if w_ih.dim() == 2:
        return F.linear(x, w_ih, b) + F.linear(h, w_hh)
    y = torch.baddbmm(b.unsqueeze(1), x.unsqueeze(1), w_ih.transpose(1, 2))
    return torch.baddbmm(y, h.unsqueeze(1), w_hh.transpose(1, 2)).squeeze(1)
