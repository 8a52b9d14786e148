"""Episode videos: the egocentric view beside a top-down map of the path, with text overlays.

    env = RecordEpisodeVideo(gymnasium.make("thorgym/ObjectNav-v0"), "videos/")
    ...  # every finished episode becomes videos/objectnav-episode-000000.mp4

The map shows the scene's walls and furniture footprints (from the backend's ``layout()``), the
target type's instances (magenta rings), the agent's path and its current pose. The text band
names scene, target, step, action, reward, return and the outcome. Files are written with
imageio-ffmpeg (H.264, yuv420p) to a temporary name and renamed when complete.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from thorgym.atomic import atomic_path

__all__ = ["EpisodeVideoWriter", "RecordEpisodeVideo", "compose_frame", "draw_topdown"]

_BG = (246, 243, 236)
_FLOOR = (226, 214, 196)
_WALL = (70, 70, 70)
_PATH = (40, 90, 220)
_TARGET = (235, 0, 205)  # magenta ring (with a white halo) around target instances
_PARTNER = (30, 170, 60)  # a second agent (multi-agent tasks)
_TEXT_BAND = (24, 24, 28)


def _type_color(object_type: str) -> tuple[int, int, int]:
    try:
        from thorgym.sim.objects import TYPE_COLORS

        c = TYPE_COLORS.get(object_type)
        if c is not None:
            return tuple(int(255 * v) for v in c)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    h = zlib.crc32(object_type.encode())
    return (80 + h % 150, 80 + (h >> 8) % 150, 80 + (h >> 16) % 150)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_topdown(
    layout: Mapping[str, Any],
    path: Sequence[Sequence[float]] = (),
    target: str | None = None,
    size: int = 256,
    others: Sequence[Sequence[float]] = (),
) -> np.ndarray:
    """(size, size, 3) uint8 top-down map: walls, object footprints, target, path and agent.

    Args:
        layout: ``bounds`` (x0, z0, x1, z1), ``walls`` [(x0, z0, x1, z1)], ``objects``
            [(type, x0, z0, x1, z1)].
        path: agent poses (x, z[, rotation[, horizon]]) in order; the last is drawn as the agent.
        target: object type to highlight.
        others: poses (x, z, rotation) of further agents (e.g. a partner), drawn in their own colour.
    """
    x0, z0, x1, z1 = layout["bounds"]
    m = 0.3
    x0, z0, x1, z1 = x0 - m, z0 - m, x1 + m, z1 + m
    s = (size - 4) / max(x1 - x0, z1 - z0, 1e-6)
    ox = (size - (x1 - x0) * s) / 2
    oz = (size - (z1 - z0) * s) / 2

    def px(x: float, z: float) -> tuple[float, float]:
        return ox + (x - x0) * s, oz + (z1 - z) * s  # +z up on the map

    def rect(r: Sequence[float]) -> list[float]:
        a, b = px(r[0], r[3]), px(r[2], r[1])
        return [min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])]

    img = Image.new("RGB", (size, size), _BG)
    d = ImageDraw.Draw(img)
    b = layout["bounds"]
    d.rectangle(rect(b), fill=_FLOOR)
    for w in layout.get("walls", ()):
        d.rectangle(rect(w), fill=_WALL)
    objects = list(layout.get("objects", ()))
    # Large footprints first so small objects stay visible on top of furniture.
    objects.sort(key=lambda o: -(o[3] - o[1]) * (o[4] - o[2]))
    for o in objects:
        if o[0] == target:
            continue
        d.rectangle(rect(o[1:]), fill=_type_color(o[0]), outline=(60, 60, 60))
    for o in objects:
        if o[0] == target:
            r = rect(o[1:])
            d.rectangle(r, fill=_type_color(o[0]), outline=_TARGET, width=1)
            cx, cz = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
            rr = max(6.0, (r[2] - r[0]) / 2 + 3, (r[3] - r[1]) / 2 + 3)
            d.ellipse([cx - rr - 1, cz - rr - 1, cx + rr + 1, cz + rr + 1], outline="white", width=4)
            d.ellipse([cx - rr, cz - rr, cx + rr, cz + rr], outline=_TARGET, width=2)
    pts = [px(p[0], p[1]) for p in path]
    if len(pts) > 1:
        d.line(pts, fill=_PATH, width=2)
    if pts:
        sx, sz = pts[0]
        d.rectangle([sx - 3, sz - 3, sx + 3, sz + 3], outline=_PATH, width=2)
        ax, az = pts[-1]
        r = max(3.0, 0.12 * s)
        d.ellipse([ax - r, az - r, ax + r, az + r], fill=_PATH)
        if len(path[-1]) > 2:
            yaw = np.radians(float(path[-1][2]))
            hx, hz = ax + 2.2 * r * np.sin(yaw), az - 2.2 * r * np.cos(yaw)
            d.line([ax, az, hx, hz], fill=(250, 250, 250), width=2)
    for pose in others:
        ax, az = px(pose[0], pose[1])
        r = max(3.0, 0.12 * s)
        d.ellipse([ax - r, az - r, ax + r, az + r], fill=_PARTNER)
        yaw = np.radians(float(pose[2]))
        tip = (ax + 2.2 * r * np.sin(yaw), az - 2.2 * r * np.cos(yaw))
        d.line([ax, az, *tip], fill=(250, 250, 250), width=2)
    return np.asarray(img, dtype=np.uint8)


def compose_frame(
    view: np.ndarray,
    topdown: np.ndarray,
    lines: Sequence[str] = (),
    height: int = 256,
) -> np.ndarray:
    """Egocentric view (scaled to ``height``) beside the map, under a band of text lines; the
    result's sides are multiples of 16 (what H.264 encoders want)."""
    v = Image.fromarray(np.asarray(view, dtype=np.uint8))
    scale = height / v.height
    v = v.resize((max(1, round(v.width * scale)), height), Image.NEAREST)
    t = Image.fromarray(np.asarray(topdown, dtype=np.uint8))
    if t.height != height:
        t = t.resize((round(t.width * height / t.height), height), Image.BILINEAR)
    font = _font(13)
    band = 8 + 16 * max(1, len(lines))
    w = v.width + t.width
    W, H = -(-w // 16) * 16, -(-(height + band) // 16) * 16
    img = Image.new("RGB", (W, H), _TEXT_BAND)
    img.paste(v, (0, band))
    img.paste(t, (v.width, band))
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((6, 4 + 16 * i), line, fill=(240, 240, 240), font=font)
    return np.asarray(img, dtype=np.uint8)


class EpisodeVideoWriter:
    """Collect frames and write them as one mp4 (atomically, on :meth:`close`)."""

    def __init__(self, path: str | Path, fps: int = 10) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        f = np.asarray(frame, dtype=np.uint8)
        if self.frames and f.shape != self.frames[0].shape:
            raise ValueError(f"frame shape {f.shape} differs from {self.frames[0].shape}")
        self.frames.append(f)

    def close(self) -> Path | None:
        """Encode the frames; returns the file, or None when there were none."""
        if not self.frames:
            return None
        import imageio_ffmpeg

        h, w = self.frames[0].shape[:2]
        with atomic_path(self.path) as tmp:
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                (w, h),
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=16,
                quality=7,
                ffmpeg_log_level="error",
            )
            try:
                writer.send(None)
                for f in self.frames:
                    writer.send(np.ascontiguousarray(f))
            finally:
                writer.close()
        self.frames = []
        return self.path


class RecordEpisodeVideo(gym.Wrapper):
    """Record episodes of an ObjectNav environment as mp4 files in ``video_dir``.

    Args:
        env: an ObjectNav environment (any wrapper around :class:`ObjectNavEnv`).
        video_dir: output folder.
        episode_trigger: episode index → record it? (default: every episode).
        name_prefix: file names are ``{name_prefix}-episode-{index:06d}.mp4``.
        fps: frames per second; ``height``: pixel height of the view and the map.

    One frame per observation (the reset's and every step's), so an episode of T steps gives
    T + 1 frames. ``videos`` lists the files written.
    """

    def __init__(
        self,
        env: gym.Env,
        video_dir: str | Path,
        episode_trigger: Callable[[int], bool] | None = None,
        name_prefix: str = "objectnav",
        fps: int = 10,
        height: int = 256,
    ) -> None:
        super().__init__(env)
        self.video_dir = Path(video_dir)
        self.episode_trigger = episode_trigger or (lambda i: True)
        self.name_prefix = name_prefix
        self.fps, self.height = fps, height
        self.episode_index = -1
        self.videos: list[Path] = []
        self._writer: EpisodeVideoWriter | None = None
        self._return = 0.0
        self._layout: Mapping[str, Any] | None = None

    def _frame(self, obs: Mapping[str, Any], action: str, reward: float, outcome: str) -> None:
        base = self.env.unwrapped
        ep = base.episode
        path = list(getattr(base, "path", ()))
        top = draw_topdown(self._layout, path, ep.target, size=self.height)
        steps = max(0, len(path) - 1)
        lopt = "?" if ep.l_opt is None else str(ep.l_opt)
        lines = [
            f"{ep.scene}   target: {ep.target}   L_opt: {lopt}",
            f"step {steps}   action: {action}   reward: {reward:+.2f}   return: {self._return:+.2f}",
            f"success: {outcome}",
        ]
        self._writer.add(compose_frame(obs["rgb"], top, lines, self.height))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._finish()
        obs, info = self.env.reset(**kwargs)
        self.episode_index += 1
        self._return = 0.0
        if self.episode_trigger(self.episode_index):
            name = f"{self.name_prefix}-episode-{self.episode_index:06d}.mp4"
            self._writer = EpisodeVideoWriter(self.video_dir / name, self.fps)
            self._layout = self.env.unwrapped.layout()
            self._frame(obs, "-", 0.0, "-")
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if self._writer is not None:
            from thorgym.tasks.objectnav import ACTIONS

            name = ACTIONS[int(action)]
            if terminated or truncated:
                outcome = "YES" if info.get("success") else "no"
                outcome += f"   SPL {info.get('spl', 0.0):.2f}"
                if truncated:
                    outcome += "   (step limit)" if not info.get("backend_restart") else ""
            else:
                outcome = "-"
            self._frame(obs, name, float(reward), outcome)
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def _finish(self) -> None:
        if self._writer is not None:
            path = self._writer.close()
            if path is not None:
                self.videos.append(path)
            self._writer = None

    def close(self) -> None:
        self._finish()
        super().close()
