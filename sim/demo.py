"""A short scripted episode on the built-in simulator (the README's first command)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .controller import Controller
from .view import render_view

_SCRIPT = [
    "RotateRight",
    "MoveAhead",
    "MoveAhead",
    "RotateLeft",
    "LookDown",
    "MoveAhead",
    "RotateRight",
    "RotateRight",
    "LookUp",
    "MoveAhead",
    "MoveAhead",
    "RotateLeft",
]


def scripted_episode(scene: str, out: str | Path, size: int = 160) -> list[Path]:
    """Run a fixed action script, write a frame strip PNG, the episode as mp4 and a scene view."""
    import imageio.v2 as imageio

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    with Controller(scene=scene, width=size, height=size) as c:
        frames.append(c.last_event.frame)
        for a in _SCRIPT:
            frames.append(c.step(a).frame)
    strip = out / "frames.png"
    Image.fromarray(np.concatenate([np.concatenate(frames[i : i + 7], 1) for i in (0, 6)], 0)).save(
        strip
    )
    video = out / "episode.mp4"
    tmp = out / "episode.tmp.mp4"
    imageio.mimwrite(tmp, frames, fps=4, macro_block_size=16)
    tmp.replace(video)
    view = render_view(scene, out / "view.png")
    return [strip, video, view]
