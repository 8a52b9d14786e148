"""The CORDIAL coordination loss (Cordial Sync, Jain et al., ECCV 2020) and the FurnMove /
FurnLift action sets it is defined on.

FurnMove agents have 4 *individual* actions (move and rotate themselves, pass) and 9 *joint*
ones (move or rotate the lifted furniture together). A joint action only succeeds when both
agents choose it at the same step, so a pair is valid when both actions are individual or both
agents choose the same joint action. CORDIAL raises the log-probability of the valid pairs —
the mean over the valid individual pairs and over the valid joint pairs, weighted equally so the
few joint pairs are not drowned by the many individual ones — and is annealed by
:func:`cordial_weight` over training. In FurnLift (Two Body Problem, Jain et al., CVPR 2019)
every pair is valid.
"""

from __future__ import annotations

import torch

from thorgym.tasks.furniture import FURNLIFT_ACTIONS, FURNMOVE_ACTIONS, INDIVIDUAL

__all__ = [
    "FURNLIFT_ACTIONS",
    "FURNMOVE_ACTIONS",
    "FURNMOVE_INDIVIDUAL",
    "cordial_loss",
    "cordial_weight",
    "furnlift_valid_pairs",
    "furnmove_valid_pairs",
]

# The action sets are the tasks' (thorgym.tasks.furniture): FurnMove's actions below index
# FURNMOVE_INDIVIDUAL are individual, the rest joint.
FURNMOVE_INDIVIDUAL = INDIVIDUAL
CORDIAL_ANNEAL_EPISODES = 5000
CORDIAL_MIN_WEIGHT = 0.01


def furnmove_valid_pairs(num_actions: int = len(FURNMOVE_ACTIONS)) -> tuple[torch.Tensor, torch.Tensor]:
    """``(individual_valid, joint_valid)``, each ``(K, K)`` bool: both actions individual
    (indices < 4), or the same joint action (index ≥ 4) by both agents."""
    if num_actions < FURNMOVE_INDIVIDUAL:
        raise ValueError(
            f"num_actions must be >= {FURNMOVE_INDIVIDUAL} (the individual actions), got {num_actions}"
        )
    individual = torch.arange(num_actions) < FURNMOVE_INDIVIDUAL
    individual_valid = individual[:, None] & individual[None, :]
    joint_valid = torch.diag(~individual)
    return individual_valid, joint_valid


def furnlift_valid_pairs(num_actions: int = len(FURNLIFT_ACTIONS)) -> tuple[torch.Tensor, torch.Tensor]:
    """``(individual_valid, joint_valid)`` for FurnLift: every pair valid, no joint actions."""
    if num_actions < 1:
        raise ValueError(f"num_actions must be >= 1, got {num_actions}")
    return (
        torch.ones(num_actions, num_actions, dtype=torch.bool),
        torch.zeros(num_actions, num_actions, dtype=torch.bool),
    )


def cordial_loss(
    joint_log_probs: torch.Tensor, individual_valid: torch.Tensor, joint_valid: torch.Tensor
) -> torch.Tensor:
    """CORDIAL: ``−½[mean log P over valid individual pairs + mean log P over valid joint
    pairs]``, means over the pairs in each set and over the batch; an empty set is left out
    (the other counts alone)."""
    if joint_log_probs.dim() != 3 or joint_log_probs.shape[1] != joint_log_probs.shape[2]:
        raise ValueError(f"joint_log_probs must be (B, K, K), got {tuple(joint_log_probs.shape)}")
    k = joint_log_probs.shape[-1]
    terms = []
    for name, mask in (("individual_valid", individual_valid), ("joint_valid", joint_valid)):
        if tuple(mask.shape) != (k, k):
            raise ValueError(f"{name} must be ({k}, {k}), got {tuple(mask.shape)}")
        mask = mask.to(device=joint_log_probs.device, dtype=torch.bool)
        if mask.any():
            terms.append(joint_log_probs[:, mask].mean())
    if not terms:
        raise ValueError("individual_valid and joint_valid are both empty: no valid pair to reward")
    return -torch.stack(terms).mean()


def cordial_weight(episode: int) -> float:
    """CORDIAL's annealed weight: ``max(0.01, (5000 − episode) / 5000)``."""
    return max(CORDIAL_MIN_WEIGHT, (CORDIAL_ANNEAL_EPISODES - episode) / CORDIAL_ANNEAL_EPISODES)
