"""Operations on a two-agent joint action distribution given as log-probabilities ``(B, K, K)``
(``[b, a1, a2] = log P(a1, a2)``), as :class:`~.model.TBone` returns for every policy.

:func:`tvd` measures how far P is from the product of its marginals — zero for marginal
policies, the coordination that central and SYNC policies can express beyond it (Cordial Sync,
Jain et al., ECCV 2020). :func:`sample_sync` is SYNC's decentralised sampling: a shared draw of
the mixture component, then each agent samples its own action from that component.
"""

from __future__ import annotations

import torch

__all__ = ["invalid_mass", "joint_entropy", "joint_log_prob", "sample_joint", "sample_sync", "tvd"]


def _check_joint(joint_log_probs: torch.Tensor) -> None:
    if joint_log_probs.dim() != 3 or joint_log_probs.shape[1] != joint_log_probs.shape[2]:
        raise ValueError(f"joint_log_probs must be (B, K, K), got {tuple(joint_log_probs.shape)}")


def sample_joint(joint_log_probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Joint actions ``(B, 2)`` (long) drawn from P."""
    _check_joint(joint_log_probs)
    k = joint_log_probs.shape[-1]
    flat = torch.multinomial(joint_log_probs.detach().flatten(1).exp(), 1, generator=generator).squeeze(1)
    return torch.stack([flat // k, flat % k], dim=1)


def sample_sync(
    mixture_log_weights: torch.Tensor,
    component_log_probs: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SYNC sampling ``(B, 2)``: component j ~ α from one draw both agents share (the shared
    ``generator``), then agent i draws from ``p_i_j``. Same distribution as :func:`sample_joint` on
    the mixture's joint log-probs."""
    b, agents, m, k = component_log_probs.shape
    if mixture_log_weights.shape != (b, m) or agents != 2:
        raise ValueError(
            f"need mixture_log_weights (B, m) and component_log_probs (B, 2, m, K), got "
            f"{tuple(mixture_log_weights.shape)} and {tuple(component_log_probs.shape)}"
        )
    j = torch.multinomial(mixture_log_weights.detach().exp(), 1, generator=generator).squeeze(1)
    chosen = component_log_probs.detach()[torch.arange(b), :, j]  # (B, 2, K)
    return torch.multinomial(chosen.flatten(0, 1).exp(), 1, generator=generator).view(b, 2)


def joint_log_prob(joint_log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``log P(a1, a2)`` ``(B,)`` for ``actions`` ``(B, 2)``."""
    _check_joint(joint_log_probs)
    b = joint_log_probs.shape[0]
    if tuple(actions.shape) != (b, 2):
        raise ValueError(f"actions must be ({b}, 2), got {tuple(actions.shape)}")
    a = actions.long()
    return joint_log_probs[torch.arange(b, device=a.device), a[:, 0], a[:, 1]]


def _probs_times_logs(joint_log_probs: torch.Tensor) -> torch.Tensor:
    p = joint_log_probs.exp()
    # 0 · log 0 = 0 (a -inf log-probability would make the product NaN)
    return torch.where(p > 0, p * joint_log_probs, torch.zeros_like(p))


def joint_entropy(joint_log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of P over joint actions ``(B,)`` (nats)."""
    _check_joint(joint_log_probs)
    return -_probs_times_logs(joint_log_probs).flatten(1).sum(1)


def tvd(joint_log_probs: torch.Tensor) -> torch.Tensor:
    """Total variation distance ``½‖P − P¹⊗P²‖₁`` ``(B,)`` between P and the product of its marginals."""
    _check_joint(joint_log_probs)
    p = joint_log_probs.exp()
    product = p.sum(2)[:, :, None] * p.sum(1)[:, None, :]
    return 0.5 * (p - product).abs().flatten(1).sum(1)


def invalid_mass(joint_log_probs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Probability ``(B,)`` P puts on pairs where ``valid`` ``(K, K)`` is False."""
    _check_joint(joint_log_probs)
    if valid.shape != joint_log_probs.shape[1:]:
        raise ValueError(f"valid must be {tuple(joint_log_probs.shape[1:])}, got {tuple(valid.shape)}")
    invalid = ~valid.to(device=joint_log_probs.device, dtype=torch.bool)
    return (joint_log_probs.exp() * invalid).flatten(1).sum(1)
