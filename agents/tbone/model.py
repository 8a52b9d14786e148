"""The communicating two-agent actor-critic of "Two Body Problem" (TBONE; Jain et al., CVPR 2019)
and "A Cordial Sync" (Jain et al., ECCV 2020), for FurnLift and FurnMove.

One step for both agents at once (agent dimension 2 everywhere):

1. :class:`ImageEncoder` — a small CNN on each agent's egocentric frame (RGB plus optional extra
   planes such as a top-down map), adaptive-pooled to 4×4 so any square size ≥ 32 gives the same
   feature size, then a linear layer to ``hidden``. The weights are shared by both agents; a
   learned agent-id embedding is added so the agents can still specialise.
2. ``LSTMCell`` → each agent's *belief*.
3. Explicit communication (``comm`` "explicit" or "both"): a *talk* then a *reply*
   :class:`CommRound`. In each round each agent emits a softmax over a small vocabulary and sends
   the probability-weighted sum of learned symbol embeddings; it receives its partner's message
   and updates its belief with a residual MLP of ``[belief, received]``. "implicit" and "none"
   skip the rounds (implicit communication is the env rendering the partner in the image).
4. :class:`PolicyHead` — the joint distribution over the K×K joint actions:

   * ``marginal``: independent per-agent softmaxes, ``P(a1, a2) = p1(a1) p2(a2)``;
   * ``central``: one softmax over all K×K joint actions from both agents' features;
   * ``sync`` (SYNC-policies, Cordial Sync): a mixture of m products,
     ``P(a1, a2) = Σ_j α_j p1_j(a1) p2_j(a2)``. Both agents must compute α identically, so it is a
     function of both reply-round messages in fixed agent order (both agents hold them after the
     reply round). Without explicit messages there is nothing shared, so α is a learned constant.
     Acting decentrally: draw j from α with a shared random draw, then each agent samples from
     its own ``p_a_j`` (:func:`~.distributions.sample_sync`) — the same distribution as P.

   A team critic reads both agents' features.

Everything returned is log-probabilities over joint actions, so the losses in
:mod:`.losses` and the helpers in :mod:`.distributions` work the same for all three policies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "COMM_MODES",
    "POLICIES",
    "CommRound",
    "ImageEncoder",
    "PolicyHead",
    "TBone",
    "TBoneConfig",
    "TBoneOutput",
]

COMM_MODES = ("explicit", "implicit", "both", "none")
POLICIES = ("marginal", "central", "sync")
NUM_AGENTS = 2
MIN_IMAGE_SIZE = 32
_POOL = 4  # the encoder's adaptive pooling grid: features are 64·4·4 whatever the image size


@dataclass(frozen=True)
class TBoneConfig:
    """Sizes and variants. Defaults are the papers' (84×84 RGB, LSTM 512, 2 symbols); use
    ``message_dim=8`` for FurnLift and ``16`` for FurnMove. ``mixture`` is the number of SYNC
    components (default ``num_actions``). ``extra_channels`` are input planes stacked after RGB
    (e.g. a top-down map of the same size)."""

    num_actions: int
    comm: str = "explicit"
    policy: str = "marginal"
    hidden: int = 512
    vocab: int = 2
    message_dim: int = 8
    mixture: int | None = None
    image_size: int = 84
    extra_channels: int = 0

    def __post_init__(self) -> None:
        if self.comm not in COMM_MODES:
            raise ValueError(f"comm must be one of {COMM_MODES}, got {self.comm!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.num_actions < 2:
            raise ValueError(f"num_actions must be >= 2, got {self.num_actions}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")
        if self.vocab < 2:
            raise ValueError(f"vocab must be >= 2 symbols, got {self.vocab}")
        if self.message_dim < 1:
            raise ValueError(f"message_dim must be >= 1, got {self.message_dim}")
        if self.mixture is not None and self.mixture < 1:
            raise ValueError(f"mixture must be >= 1 (or None for num_actions), got {self.mixture}")
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {self.image_size}")
        if self.extra_channels < 0:
            raise ValueError(f"extra_channels must be >= 0, got {self.extra_channels}")

    @property
    def explicit(self) -> bool:
        """Whether the model runs the talk and reply message rounds."""
        return self.comm in ("explicit", "both")

    @property
    def in_channels(self) -> int:
        return 3 + self.extra_channels

    @property
    def components(self) -> int:
        """SYNC mixture components m."""
        return self.num_actions if self.mixture is None else self.mixture


@dataclass
class TBoneOutput:
    """One step's outputs; B is the batch, K the actions per agent, m the SYNC components."""

    joint_log_probs: torch.Tensor  # (B, K, K): log P(a1, a2)
    marginal_log_probs: torch.Tensor  # (B, 2, K): log of P's marginals
    value: torch.Tensor  # (B,): team critic
    state: tuple[torch.Tensor, torch.Tensor]  # (h, c), each (B, 2, hidden)
    talk: torch.Tensor | None = None  # (B, 2, vocab) symbol probabilities, explicit comm only
    reply: torch.Tensor | None = None  # (B, 2, vocab)
    mixture_log_weights: torch.Tensor | None = None  # (B, m): log α, sync only
    component_log_probs: torch.Tensor | None = None  # (B, 2, m, K): log p_a_j, sync only


class ImageEncoder(nn.Module):
    """CNN from an agent's ``(C, H, W)`` frame to a ``hidden`` feature (any H = W ≥ 32).

    Strided convolutions (8×8/4, 4×4/2, 3×3/1, as the Atari-style encoders of A3C agents): about
    10M multiply-adds per 84×84 frame, a twelfth of a same-resolution 5×5 stack, which is what
    makes training on CPUs practical.
    """

    def __init__(self, in_channels: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(_POOL),
        )
        self.fc = nn.Linear(64 * _POOL * _POOL, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.conv(x).flatten(1)))


class CommRound(nn.Module):
    """One message round for both agents: speak, exchange, update beliefs.

    The message is the expectation of the symbol embedding under the speaker's softmax, so the
    round is differentiable end to end (the papers' choice over sampling discrete symbols).
    """

    def __init__(self, hidden: int, vocab: int, message_dim: int) -> None:
        super().__init__()
        self.speak = nn.Linear(hidden, vocab)
        self.symbols = nn.Parameter(torch.randn(vocab, message_dim) / message_dim**0.5)
        self.update = nn.Sequential(
            nn.Linear(hidden + message_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
        )

    def forward(self, belief: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``belief`` (B, 2, hidden) → (new belief, symbol probabilities (B, 2, vocab),
        sent messages (B, 2, message_dim))."""
        probs = F.softmax(self.speak(belief), dim=-1)
        sent = probs @ self.symbols
        received = sent.flip(1)  # agent 0 hears agent 1 and vice versa
        belief = belief + self.update(torch.cat([belief, received], dim=-1))
        return belief, probs, sent


class PolicyHead(nn.Module):
    """Joint action distribution (marginal, central or sync) and team value from per-agent
    features ``(B, 2, F)`` and, for sync with explicit comm, the reply messages."""

    def __init__(self, cfg: TBoneConfig, features: int) -> None:
        super().__init__()
        self.policy = cfg.policy
        self.k = cfg.num_actions
        self.m = cfg.components
        if cfg.policy == "marginal":
            self.actor = nn.Linear(features, self.k)
        elif cfg.policy == "central":
            self.actor = nn.Linear(NUM_AGENTS * features, self.k * self.k)
        else:
            self.actor = nn.Linear(features, self.m * self.k)
            if cfg.explicit:
                self.mixer: nn.Module = nn.Linear(NUM_AGENTS * cfg.message_dim, self.m)
            else:
                self.mixer_logits = nn.Parameter(torch.zeros(self.m))
        self.critic = nn.Linear(NUM_AGENTS * features, 1)

    def forward(
        self, feats: torch.Tensor, reply: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """→ (joint log-probs (B, K, K), marginal log-probs (B, 2, K) for the marginal policy else
        None, log α (B, m) | None, log p_a_j (B, 2, m, K) | None)."""
        b, k = feats.shape[0], self.k
        if self.policy == "marginal":
            lp = F.log_softmax(self.actor(feats), dim=-1)
            return lp[:, 0, :, None] + lp[:, 1, None, :], lp, None, None
        if self.policy == "central":
            return F.log_softmax(self.actor(feats.flatten(1)), dim=-1).view(b, k, k), None, None, None
        comp = F.log_softmax(self.actor(feats).view(b, NUM_AGENTS, self.m, k), dim=-1)
        if reply is not None:
            log_alpha = F.log_softmax(self.mixer(reply.flatten(1)), dim=-1)
        else:
            log_alpha = F.log_softmax(self.mixer_logits, dim=-1).expand(b, self.m)
        joint = torch.logsumexp(
            log_alpha[:, :, None, None] + comp[:, 0, :, :, None] + comp[:, 1, :, None, :], dim=1
        )
        return joint, None, log_alpha, comp

    def value(self, feats: torch.Tensor) -> torch.Tensor:
        """Team value (B,) from both agents' features."""
        return self.critic(feats.flatten(1)).squeeze(-1)


class TBone(nn.Module):
    """Both agents' recurrent step: encoder → LSTM → (talk, reply) → policy and value heads.

    The recurrent state is the LSTM's own ``(h, c)``; the message-updated beliefs feed only this
    step's heads (the next step hears fresh messages anyway)."""

    def __init__(self, cfg: TBoneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg.in_channels, cfg.hidden)
        self.agent_embedding = nn.Embedding(NUM_AGENTS, cfg.hidden)
        self.lstm = nn.LSTMCell(cfg.hidden, cfg.hidden)
        features = cfg.hidden
        if cfg.explicit:
            self.talk = CommRound(cfg.hidden, cfg.vocab, cfg.message_dim)
            self.reply = CommRound(cfg.hidden, cfg.vocab, cfg.message_dim)
            features += NUM_AGENTS * cfg.message_dim  # own and partner's reply message
        self.head = PolicyHead(cfg, features)

    def initial_state(
        self, batch: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h, c)``, each ``(batch, 2, hidden)``."""
        z = torch.zeros(batch, NUM_AGENTS, self.cfg.hidden, device=device)
        return z, z.clone()

    def _check(self, obs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        c = self.cfg
        want = (NUM_AGENTS, c.in_channels, c.image_size, c.image_size)
        if obs.dim() != 5 or tuple(obs.shape[1:]) != want:
            raise ValueError(f"obs must be (B, {', '.join(map(str, want))}), got {tuple(obs.shape)}")
        for name, s in zip(("h", "c"), state, strict=True):
            if tuple(s.shape) != (obs.shape[0], NUM_AGENTS, c.hidden):
                raise ValueError(
                    f"state {name} must be ({obs.shape[0]}, {NUM_AGENTS}, {c.hidden}), got {tuple(s.shape)}"
                )

    def forward(
        self,
        obs: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        reset: torch.Tensor | None = None,
    ) -> TBoneOutput:
        """One step. ``obs`` (B, 2, C, H, W), uint8 (scaled by 1/255) or float; ``reset`` (B,)
        bool zeroes those rows' state first (new episodes)."""
        self._check(obs, state)
        b = obs.shape[0]
        h, c = state
        if reset is not None:
            keep = (~reset.to(device=h.device, dtype=torch.bool)).to(h.dtype)[:, None, None]
            h, c = h * keep, c * keep
        x = obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()
        feats = self.encoder(x.flatten(0, 1)).view(b, NUM_AGENTS, -1) + self.agent_embedding.weight
        h, c = self.lstm(feats.flatten(0, 1), (h.flatten(0, 1), c.flatten(0, 1)))
        h, c = h.view(b, NUM_AGENTS, -1), c.view(b, NUM_AGENTS, -1)
        belief, talk, reply, reply_msg = h, None, None, None
        if self.cfg.explicit:
            belief, talk, _ = self.talk(belief)
            belief, reply, reply_msg = self.reply(belief)
            belief = torch.cat([belief, reply_msg, reply_msg.flip(1)], dim=-1)
        joint, marginals, log_alpha, comp = self.head(belief, reply_msg)
        if marginals is None:
            marginals = torch.stack([joint.logsumexp(2), joint.logsumexp(1)], dim=1)
        # else: the marginal policy's own softmaxes, so agent 0's marginal has no path (not even
        # a zero-valued gradient) from agent 1's input when nothing is communicated
        return TBoneOutput(
            joint_log_probs=joint,
            marginal_log_probs=marginals,
            value=self.head.value(belief),
            state=(h, c),
            talk=talk,
            reply=reply,
            mixture_log_weights=log_alpha,
            component_log_probs=comp,
        )
