"""HIMN: the hierarchical interactive memory network of IQA (Gordon et al., CVPR 2018).

* :mod:`.semantic_map` — the batched top-down semantic grid (21 map classes, free space, visited,
  coverage) built from depth and per-pixel classes, its egocentric crop for the planner, and the
  ground-truth perception helper (instance segmentation → map classes);
* :mod:`.detector` — the learned per-pixel classifier (imported on use: it renders training
  frames with the simulator).
"""

from .semantic_map import (
    CELL,
    CHANNELS,
    COVERAGE,
    FREE,
    NUM_CHANNELS,
    VISITED,
    SemanticMap,
    class_table,
    classes_from_instance,
)

__all__ = [
    "CELL",
    "CHANNELS",
    "COVERAGE",
    "FREE",
    "NUM_CHANNELS",
    "VISITED",
    "SemanticMap",
    "class_table",
    "classes_from_instance",
]
