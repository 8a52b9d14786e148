"""Learning curves over seeds, read from the runs' TensorBoard logs.

``thorgym plot curves`` compares groups of runs (e.g. pretrained backbone vs random init, SAVN vs
non-adaptive): each run's scalar is put on a common step grid (linear interpolation, no
extrapolation), lightly smoothed, and each group is drawn as its mean over seeds with a band from
the lowest to the highest seed. The numbers behind the figure are returned too, so a results table
can quote them (e.g. the mean success at given steps).
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from thorgym.atomic import atomic_writer
from thorgym.rundir import read_scalars

__all__ = ["expand_runs", "group_curve", "plot_curves", "read_scalars", "smooth"]


def expand_runs(patterns: Sequence[str]) -> list[Path]:
    """Run directories named by paths or glob patterns, in sorted order; an error if none match."""
    runs: list[Path] = []
    for pat in patterns:
        hits = sorted(glob.glob(pat)) if any(c in pat for c in "*?[") else [pat]
        runs += [Path(h) for h in hits if Path(h).is_dir()]
    if not runs:
        raise FileNotFoundError(f"no run directory matches {list(patterns)}")
    return runs


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (the first points average what exists)."""
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def group_curve(
    runs: Sequence[Path], tag: str, points: int = 100, window: int = 5
) -> dict[str, np.ndarray]:
    """Mean, min and max over runs of ``tag`` on a shared step grid (up to the shortest run)."""
    series = []
    for run in runs:
        s, v = read_scalars(run, tag)
        if len(s) == 0:
            raise ValueError(f"run {run} has no TensorBoard scalar {tag!r} (is it a training run dir?)")
        series.append((s, smooth(v, window)))
    start = max(s[0] for s, _ in series)
    end = min(s[-1] for s, _ in series)
    grid = np.linspace(start, end, points)
    values = np.stack([np.interp(grid, s, v) for s, v in series])
    return {
        "steps": grid,
        "mean": values.mean(0),
        "min": values.min(0),
        "max": values.max(0),
        "runs": values,
    }


def plot_curves(
    groups: Mapping[str, Sequence[Path]],
    out: Path,
    tags: Sequence[str] = ("objectnav/success", "objectnav/spl"),
    window: int = 5,
    title: str = "",
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Write a PNG with one panel per tag and one mean ± (min..max) curve per group.

    Returns ``{tag: {group: group_curve(...)}}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    fig, axes = plt.subplots(1, len(tags), figsize=(6 * len(tags), 3.8), squeeze=False)
    for ax, tag in zip(axes[0], tags, strict=True):
        curves[tag] = {}
        for label, runs in groups.items():
            c = group_curve(runs, tag, window=window)
            curves[tag][label] = c
            (line,) = ax.plot(c["steps"], c["mean"], label=f"{label} ({len(runs)} seeds)")
            ax.fill_between(c["steps"], c["min"], c["max"], color=line.get_color(), alpha=0.2)
        ax.set_xlabel("environment steps")
        ax.set_title(f"{tag} (mean, band = min..max over seeds)")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_writer(out) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return curves
