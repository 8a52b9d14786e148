"""HIMN's spatial memory: the batched top-down semantic grid of :mod:`thorgym.tasks.iqa_map`
(the IQA task offers the same map as its ``semantic_map`` observation), under its former name."""

from __future__ import annotations

from thorgym.tasks.iqa_map import (
    CAMERA_Y,
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
    "CAMERA_Y",
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
