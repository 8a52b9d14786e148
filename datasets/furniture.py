"""Fixed FurnLift / FurnMove evaluation episodes.

Episode k of a split is drawn from its own random stream ``(seed, task, split, k)`` in scene
``k mod 5`` of the split's living rooms (the next scene after 300 failed draws), with the tasks' own samplers
(:func:`thorgym.tasks.furniture.sample_lift_episode` / ``sample_move_episode``: redrawn until
the pickup pair, or the goal, can be reached), so any prefix is reproducible on its own. The
episodes are for the built-in simulator's scenes (and ``thorgym-thor``), not for Unity's.

The val and test sets ship as ``data/{furnlift,furnmove}_{val,test}.json.gz``;
:func:`load_episodes` reads them. Regenerate with
``python -m thorgym.datasets.furniture TASK SPLIT [PER_SCENE]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from thorgym.tasks import furniture as fur

from .episode_files import read_episodes, save_episodes

DATA_DIR = Path(__file__).parent / "data"
TASKS = ("furnlift", "furnmove")
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}
_TASK_ID = {"furnlift": 0, "furnmove": 1}
PER_SCENE = 40  # shipped episodes per scene (the reference evaluates 200 per scene)
MAX_DRAWS = 300  # draws in one scene before its episode moves to the next scene

__all__ = ["generate_episodes", "load_episodes", "save_episodes", "shipped_path"]


def generate_episodes(
    task: str, split: str, per_scene: int = PER_SCENE, seed: int = 0
) -> list[dict[str, Any]]:
    """``per_scene`` episodes for each living room of the split, reproducibly (see the module doc)."""
    _check(task, split)
    if per_scene < 0:
        raise ValueError("per_scene must be non-negative")
    scenes = fur.scenes_of(split)
    sample = fur.sample_lift_episode if task == "furnlift" else fur.sample_move_episode
    out = []
    for k in range(per_scene * len(scenes)):
        rng = np.random.default_rng([seed, _TASK_ID[task], _SPLIT_ID[split], k])
        ep = None
        for attempt in range(MAX_DRAWS * len(scenes)):
            # A scene where the task can rarely be set up (FurnMove: the carriers cannot bring the
            # Television to the goal from most places) hands its episode to the next scene.
            ep = sample(scenes[(k + attempt // MAX_DRAWS) % len(scenes)], rng)
            if ep is not None:
                break
        if ep is None:
            raise RuntimeError(f"no {task} episode could be set up in {scenes}")
        d = ep.to_dict()
        d["id"] = f"{task}-{split}-{k:04d}"
        out.append(d)
    return out


def _check(task: str, split: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown furniture task {task!r}: choose from {TASKS}")
    if split not in _SPLIT_ID:
        raise ValueError(f"unknown split {split!r}: choose from {tuple(_SPLIT_ID)}")


def shipped_path(task: str, split: str) -> Path:
    _check(task, split)
    return DATA_DIR / f"{task}_{split}.json.gz"


def load_episodes(task: str, split_or_path: str | Path) -> list[dict[str, Any]]:
    """The shipped episodes of a task's split ("val", "test"), or those of a .json(.gz) file."""
    p = Path(split_or_path)
    if str(split_or_path) in _SPLIT_ID:
        p = shipped_path(task, str(split_or_path))
        if not p.is_file():
            raise FileNotFoundError(
                f"no shipped {task} episodes for {split_or_path!r} ({p}); generate them with "
                f"`python -m thorgym.datasets.furniture {task} {split_or_path}`"
            )
    return read_episodes(p, check=fur.FurnitureEpisode.from_dict)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m thorgym.datasets.furniture TASK SPLIT [PER_SCENE] [--out FILE]``: write the
    shipped set (or FILE)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    out = None
    if "--out" in args:
        k = args.index("--out")
        out = Path(args[k + 1])
        del args[k : k + 2]
    if len(args) < 2:
        print(main.__doc__)
        return 2
    task, split = args[0], args[1]
    n = int(args[2]) if len(args) > 2 else PER_SCENE
    print(save_episodes(generate_episodes(task, split, n), out or shipped_path(task, split)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
