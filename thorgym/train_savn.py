"""Former home of the SAVN trainer, kept so older imports work: the trainer is now
:mod:`thorgym.agents.savn.trainer` and the checkpoint format :mod:`thorgym.agents.savn.checkpoint`."""

from thorgym.agents.savn.checkpoint import CKPT_FORMAT, load_savn_checkpoint
from thorgym.agents.savn.trainer import (
    SAVN_AGENTS,
    SAVNTrainer,
    a2c_loss,
    build_savn,
    resolve_backbone_ckpt,
    train_savn,
)

__all__ = [
    "CKPT_FORMAT",
    "SAVN_AGENTS",
    "SAVNTrainer",
    "a2c_loss",
    "build_savn",
    "load_savn_checkpoint",
    "resolve_backbone_ckpt",
    "train_savn",
]
