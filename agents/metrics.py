"""Multi-label ranking metrics on arrays: average precision (AP) and macro mean AP.

One implementation for every caller (``thorgym pretrain``'s held-out scores and the compression
benchmark's task metric). Inputs are NumPy arrays or torch tensors (moved to CPU); results are
NumPy / Python floats. Tied scores form one threshold, as scikit-learn's
``average_precision_score`` does, so a constant score gets the class frequency and the result does
not depend on the order of tied samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x)


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision of one class: sum over score thresholds of recall gain × precision.

    ``labels`` are 0/1, ``scores`` any real numbers (higher = more likely positive), both of
    ``N`` elements. Tied scores form one threshold. NaN when there is no positive.
    """
    y = _as_numpy(labels).astype(np.float64).reshape(-1)
    s = _as_numpy(scores).astype(np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_average_precision(labels: Any, scores: Any) -> np.ndarray:
    """``(C,)`` float64 AP of each column of ``(N, C)`` labels and scores; NaN for a class with
    no positive."""
    y, s = _as_numpy(labels), _as_numpy(scores)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must both be (N, C)")
    return np.array([average_precision(y[:, c], s[:, c]) for c in range(y.shape[1])], dtype=np.float64)


def mean_average_precision(labels: Any, scores: Any) -> tuple[float, np.ndarray]:
    """(macro mAP over the classes with at least one positive, per-class AP with NaN for the
    others) of ``(N, C)`` labels and scores. The mAP is NaN when no class has a positive."""
    aps = per_class_average_precision(labels, scores)
    present = ~np.isnan(aps)
    return (float(aps[present].mean()) if present.any() else float("nan")), aps


__all__ = ["average_precision", "mean_average_precision", "per_class_average_precision"]
