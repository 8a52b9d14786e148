"""SAVN: self-adaptive visual navigation (Wortsman et al., CVPR 2019) and its non-adaptive baseline.

* :mod:`.model` — the policy network (frozen backbone map, target and previous-action fusion,
  LSTM 512, actor/critic) as a functional step that accepts per-environment weights;
* :mod:`.loss` — the learned interaction loss (temporal convolution over the last 6 steps);
* :mod:`.adapt` — the inner loop (fast weights, one SGD step every 6 actions, ≤ 4 per episode).

Only tensors come in and out of those three; the training loop over environments is
:mod:`.trainer`, the checkpoint format :mod:`.checkpoint`, the evaluation policy :mod:`.policy`
(imported on use, not here).
"""

from .adapt import FastWeightLearner
from .loss import InteractionLoss, InteractionLossConfig
from .model import SAVNConfig, SAVNNet, SpatialBackbone, policy_step

__all__ = [
    "FastWeightLearner",
    "InteractionLoss",
    "InteractionLossConfig",
    "SAVNConfig",
    "SAVNNet",
    "SpatialBackbone",
    "policy_step",
]
