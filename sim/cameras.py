"""AI2-THOR's third-party cameras for :class:`thorgym.sim.Controller`.

``AddThirdPartyCamera(position, rotation, fieldOfView=90)`` adds a fixed camera and
``UpdateThirdPartyCamera(thirdPartyCameraId, position=…, rotation=…, fieldOfView=…)`` moves it
(keys left out keep their values). Each event then carries one frame per camera, of the frame
kinds the agents get (RGB, and depth / segmentation when those are rendered), in
``event.third_party_camera_frames`` and its siblings, and ``metadata["thirdPartyCameras"]``
describes them. Rotation is Unity's: x pitch (positive looks down, like cameraHorizon), y yaw,
z roll. Orthographic projection is not supported. Cameras last until the next reset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .batch import BatchedSimulator
from .segmentation import segment

__all__ = ["ThirdPartyCameras", "ThirdPartyFrames"]

_AXES = ("x", "y", "z")


class ThirdPartyFrames:
    """The frames of every third-party camera for one event (lists, one entry per camera)."""

    def __init__(self) -> None:
        self.rgb: list[np.ndarray] = []
        self.depth: list[np.ndarray] = []
        self.instance: list[np.ndarray] = []
        self.semantic: list[np.ndarray] = []


def _vector(name: str, value: Any, base: dict[str, float] | None) -> tuple[dict[str, float] | None, str]:
    """A {x, y, z} dict from `value` (keys missing from it taken from `base`), or an error."""
    if not isinstance(value, dict) or not set(value) <= set(_AXES):
        return None, f"{name} must be a dict with keys among x, y, z, got {value!r}"
    out = dict(base or {k: 0.0 for k in _AXES})
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None, f"{name}.{k} must be a finite number, got {v!r}"
        out[k] = float(v)
    if base is None and set(value) != set(_AXES):
        return None, f"{name} needs x, y and z, got {value!r}"
    return out, ""


class ThirdPartyCameras:
    """The third-party cameras of one Controller (see the module docstring)."""

    def __init__(self) -> None:
        self.cameras: list[dict[str, Any]] = []

    def clear(self) -> None:
        self.cameras = []

    def add(self, kw: dict[str, Any]) -> tuple[bool, str]:
        """AddThirdPartyCamera; bad values fail the action, as in AI2-THOR."""
        for key in ("position", "rotation"):
            if key not in kw:
                raise ValueError(f"AddThirdPartyCamera: missing required argument {key!r}")
        camera = {"fieldOfView": 90.0}
        return self._apply("AddThirdPartyCamera", camera, kw, new=True)

    def update(self, kw: dict[str, Any]) -> tuple[bool, str]:
        """UpdateThirdPartyCamera: what is given changes, the rest stays."""
        if "thirdPartyCameraId" not in kw:
            raise ValueError("UpdateThirdPartyCamera: missing required argument 'thirdPartyCameraId'")
        i = kw["thirdPartyCameraId"]
        if not 0 <= i < len(self.cameras):
            return False, (
                f"thirdPartyCameraId {i} does not exist; there are {len(self.cameras)} third-party cameras"
            )
        return self._apply("UpdateThirdPartyCamera", self.cameras[i], kw, new=False)

    def _apply(self, action: str, camera: dict[str, Any], kw: dict[str, Any], new: bool) -> tuple[bool, str]:
        if kw.get("orthographic"):
            return False, f"{action}: orthographic cameras are not supported by thorgym.sim"
        changed = dict(camera)
        for key in ("position", "rotation"):
            if key in kw:
                vec, err = _vector(key, kw[key], None if new else camera[key])
                if vec is None:
                    return False, f"{action}: {err}"
                changed[key] = vec
        if "fieldOfView" in kw:
            fov = kw["fieldOfView"]
            if not 0 < fov < 180:
                return False, f"{action}: fieldOfView must be in (0, 180), got {fov:g}"
            changed["fieldOfView"] = float(fov)
        if new:
            self.cameras.append(changed)
        else:
            camera.update(changed)
        return True, ""

    def metadata(self) -> list[dict[str, Any]]:
        """``metadata["thirdPartyCameras"]`` entries."""
        return [
            {
                "thirdPartyCameraId": i,
                "position": dict(c["position"]),
                "rotation": dict(c["rotation"]),
                "fieldOfView": c["fieldOfView"],
                "orthographic": False,
                "orthographicSize": 0.0,
            }
            for i, c in enumerate(self.cameras)
        ]

    def render(self, sim: BatchedSimulator, want: dict[str, bool]) -> ThirdPartyFrames:
        """Each camera's frames of the kinds in `want` (rgb, depth, instance, semantic)."""
        frames = ThirdPartyFrames()
        shown = sim.agent_count if sim.agents_visible else 0
        for c in self.cameras:
            out = sim.render_cameras(
                0,
                [[c["position"][k] for k in _AXES]],
                [[c["rotation"][k] for k in _AXES]],
                c["fieldOfView"],
                rgb=want["rgb"],
            )
            if want["rgb"] and out.rgb is not None:
                frames.rgb.append(out.rgb[0].cpu().numpy())
            if want["depth"]:
                frames.depth.append(out.depth[0].cpu().numpy().copy())
            if want["instance"] or want["semantic"]:
                seg = segment(
                    sim.worlds[0], out.inst[0].cpu().numpy(), shown, want["instance"], want["semantic"]
                )
                if seg.instance is not None:
                    frames.instance.append(seg.instance)
                if seg.semantic is not None:
                    frames.semantic.append(seg.semantic)
        return frames
