"""Batched recurrent PPO: :func:`train`, :func:`load_policy` (see :mod:`.trainer`)."""

from .model import PolicySpec, RecurrentActorCritic, spec_from_space
from .policy import PPOPolicy, load_policy
from .trainer import CKPT_FORMAT, PPOConfig, latest_checkpoint, make_spec, train

__all__ = [
    "CKPT_FORMAT",
    "PPOConfig",
    "PPOPolicy",
    "PolicySpec",
    "RecurrentActorCritic",
    "latest_checkpoint",
    "load_policy",
    "make_spec",
    "spec_from_space",
    "train",
]
