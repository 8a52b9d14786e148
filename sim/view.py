"""`thorgym view SCENE`: one picture with the egocentric frame, depth, segmentation and a map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thorgym.atomic import atomic_path

from .controller import Controller
from .objects import OBJECT_TYPES, TYPE_COLORS


def render_view(
    scene: str, out: str | Path, width: int = 224, height: int = 224, actions: tuple[str, ...] = ()
) -> Path:
    """Write a 2×2 figure of the scene (after optional actions) to `out` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    with Controller(
        scene=scene,
        width=width,
        height=height,
        renderDepthImage=True,
        renderInstanceSegmentation=True,
    ) as c:
        for a in actions:
            c.step(a)
        ev = c.last_event
        spec = c.simulator.worlds[0].spec
        world = c.simulator.worlds[0]
    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    axes[0, 0].imshow(ev.frame)
    axes[0, 0].set_title(f"{ev.metadata['sceneName']}: RGB")
    im = axes[0, 1].imshow(ev.depth_frame, cmap="viridis")
    axes[0, 1].set_title("depth (m)")
    fig.colorbar(im, ax=axes[0, 1], fraction=0.046)
    axes[1, 0].imshow(ev.instance_segmentation_frame)
    axes[1, 0].set_title("instance segmentation")
    ax = axes[1, 1]
    for lo, hi in spec.walls:
        ax.add_patch(Rectangle((lo[0], lo[2]), hi[0] - lo[0], hi[2] - lo[2], color="0.3"))
    vis = {o["objectId"] for o in ev.metadata["objects"] if o["visible"]}
    for o in world.objects:
        if o.object_id in world.picked_by:
            continue
        small = OBJECT_TYPES[o.object_type].pickupable
        ax.add_patch(
            Rectangle(
                (o.lo[0], o.lo[2]),
                o.size[0],
                o.size[2],
                color=TYPE_COLORS[o.object_type],
                alpha=0.9 if small else 0.5,
                lw=1.5 if o.object_id in vis else 0,
                ec="red" if o.object_id in vis else None,
            )
        )
        if not small or o.object_id in vis:
            ax.text(o.center[0], o.center[2], o.object_type, fontsize=6, ha="center", va="center")
    a = ev.metadata["agent"]
    x, z, yaw = a["position"]["x"], a["position"]["z"], np.radians(a["rotation"]["y"])
    ax.plot(x, z, "o", color="blue")
    ax.arrow(x, z, 0.35 * np.sin(yaw), 0.35 * np.cos(yaw), width=0.03, color="blue")
    x0, z0, x1, z1 = spec.bounds
    ax.set_xlim(x0 - 0.3, x1 + 0.3)
    ax.set_ylim(z0 - 0.3, z1 + 0.3)
    ax.set_aspect("equal")
    ax.set_title(f"top-down map ({spec.shape}); visible objects outlined red")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    for a_ in axes.flat[:3]:
        a_.axis("off")
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out
