"""The agent's hand: AI2-THOR's ``heldObjectPose``, ``MoveHeldObject`` and ``RotateHeldObject``.

The hand sits at a local offset from the camera (x right, y up, z ahead) with a local rotation
(Unity Euler angles: x pitch, y yaw, z roll); AI2-THOR reports both and the resulting world
pose in ``metadata["heldObjectPose"]`` whether or not something is held. Moving the hand
keeps it where the agent can see it: in the camera's view and within visibilityDistance of
the agent's vertical axis (AI2-THOR's rule; the held object's collisions are not modelled,
objects stay axis-aligned in the world). World rotations are given as Unity normalises them,
x in [0, 360), at x = ±90 the yaw and roll folded into y (Unity's gimbal-lock convention).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["DEFAULT_HAND", "Hand", "unity_euler"]

#: The hand's default offset from the camera (right, up, ahead), metres.
DEFAULT_HAND = (0.0, -0.16, 0.46)


def _matrix(x: float, y: float, z: float) -> np.ndarray:
    """Unity's Quaternion.Euler(x, y, z) as a matrix: roll about z, then pitch x, then yaw y."""
    a, b, c = (math.radians(v) for v in (x, y, z))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def _norm(angle: float) -> float:
    a = round(angle % 360.0, 4) % 360.0
    return 0.0 if a == 0 else a


def unity_euler(m: np.ndarray) -> tuple[float, float, float]:
    """Euler angles (x, y, z) of a rotation matrix as Unity reports them."""
    sx = max(-1.0, min(1.0, -m[1, 2]))
    x = math.degrees(math.asin(sx))
    if abs(sx) > 1 - 1e-9:  # gimbal lock: roll folded into yaw
        y = math.degrees(math.atan2(-m[2, 0], m[0, 0]))
        z = 0.0
    else:
        y = math.degrees(math.atan2(m[0, 2], m[2, 2]))
        z = math.degrees(math.atan2(m[1, 0], m[1, 1]))
    return _norm(x), _norm(y), _norm(z)


def _vec(v: tuple[float, float, float] | list[float]) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


class Hand:
    """One agent's hand: local offset and rotation, reset with the scene."""

    def __init__(self) -> None:
        self.local = list(DEFAULT_HAND)
        self.rotation = [0.0, 0.0, 0.0]

    def world_position(self, camera: list[float], yaw: float) -> list[float]:
        right, up, ahead = self.local
        r = math.radians(yaw)
        return [
            camera[0] + ahead * math.sin(r) + right * math.cos(r),
            camera[1] + up,
            camera[2] + ahead * math.cos(r) - right * math.sin(r),
        ]

    def pose(self, camera: list[float], yaw: float) -> dict[str, Any]:
        """``heldObjectPose``: world and local position and rotation."""
        world = unity_euler(_matrix(0.0, yaw, 0.0) @ _matrix(*self.rotation))
        local = unity_euler(_matrix(*self.rotation))
        return {
            "position": _vec(self.world_position(camera, yaw)),
            "rotation": _vec(world),
            "localPosition": _vec(self.local),
            "localRotation": _vec(local),
        }

    def move(
        self,
        delta: tuple[float, float, float],
        camera: list[float],
        yaw: float,
        horizon: float,
        fov: float,
        aspect: float,
        reach: float,
    ) -> str | None:
        """MoveHeldObject by (right, up, ahead) metres; an error (and no move) if the hand would
        leave the camera's view or the agent's reach."""
        new = [a + d for a, d in zip(self.local, delta, strict=True)]
        right, up, ahead = new
        # camera frame: pitch the (up, ahead) pair by the horizon (positive looks down)
        h = math.radians(horizon)
        fwd = ahead * math.cos(h) - up * math.sin(h)
        vert = ahead * math.sin(h) + up * math.cos(h)
        ty = math.tan(math.radians(fov) / 2)
        if fwd <= 0.05 or abs(vert / fwd) > ty or abs(right / fwd) > ty * aspect:
            return "the hand cannot move out of the agent's view"
        if math.hypot(right, ahead) > reach:
            return f"the hand cannot move farther than visibilityDistance ({reach:g} m) from the agent"
        self.local = new
        return None

    def rotate(self, pitch: float, yaw: float, roll: float) -> None:
        """RotateHeldObject: add pitch / yaw / roll degrees to the local Euler angles, as
        AI2-THOR does (roll is positive to the right, so it lowers Unity's z angle)."""
        x, y, z = self.rotation
        self.rotation = list(unity_euler(_matrix(x + pitch, y + yaw, z - roll)))

    def set_rotation(self, x: float, y: float, z: float) -> None:
        """RotateHeldObject(rotation={x, y, z}): the local rotation itself."""
        self.rotation = list(unity_euler(_matrix(x, y, z)))
