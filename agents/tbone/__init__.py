"""Communicating two-body agents: "Two Body Problem" (TBONE; Jain et al., CVPR 2019) and
"A Cordial Sync" (Jain et al., ECCV 2020), pure torch.

* :mod:`.model` — :class:`TBone`: shared CNN + LSTM per agent, talk and reply message rounds,
  marginal / central / SYNC policies over joint actions and a team critic;
* :mod:`.distributions` — sampling, log-probability, entropy, TVD and invalid mass of a joint
  action distribution;
* :mod:`.losses` — the CORDIAL loss, its annealing weight and the FurnMove / FurnLift valid pairs.
"""

from .distributions import invalid_mass, joint_entropy, joint_log_prob, sample_joint, sample_sync, tvd
from .losses import (
    FURNLIFT_ACTIONS,
    FURNMOVE_ACTIONS,
    cordial_loss,
    cordial_weight,
    furnlift_valid_pairs,
    furnmove_valid_pairs,
)
from .model import COMM_MODES, POLICIES, CommRound, ImageEncoder, PolicyHead, TBone, TBoneConfig, TBoneOutput

__all__ = [
    "COMM_MODES",
    "FURNLIFT_ACTIONS",
    "FURNMOVE_ACTIONS",
    "POLICIES",
    "CommRound",
    "ImageEncoder",
    "PolicyHead",
    "TBone",
    "TBoneConfig",
    "TBoneOutput",
    "cordial_loss",
    "cordial_weight",
    "furnlift_valid_pairs",
    "furnmove_valid_pairs",
    "invalid_mass",
    "joint_entropy",
    "joint_log_prob",
    "sample_joint",
    "sample_sync",
    "tvd",
]
