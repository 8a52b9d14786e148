"""The force-prediction agent of "What happens if…" (Mottaghi et al., ECCV 2016).

* :mod:`.model` — :class:`ForcesModel`: backbone on image + mask (+ force-point map), force MLP,
  GRU decoder unrolled over the 6 label steps;
* :mod:`.data` — batches and the label-exact augmentations (mirror, colour jitter);
* :mod:`.trainer` — :func:`train_forces` (``thorgym train forces``), checkpoints, :func:`load_model`;
* :mod:`.evaluate` — :func:`evaluate_forces` (``thorgym eval forces``): the model and the
  most-frequent, nearest-neighbour and random baselines;
* :mod:`.video` — contact sheets and videos of predicted vs simulated trajectories.
"""

from .model import ForcesModel, ForcesModelConfig

__all__ = ["ForcesModel", "ForcesModelConfig"]
