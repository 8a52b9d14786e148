"""The AI2-THOR process behind the controller contract, as the environments use it.

The built-in simulator is driven batched (``thorgym.envs.worlds.SimWorlds``, with
:func:`objectnav_simulator`'s settings); this module is for one world behind AI2-THOR's
controller API (``thorgym.envs.worlds.ControllerWorlds``). The contract:

- ``reset(scene) -> NavEvent``: load a scene in its initial state (agent at its start pose).
- ``step(action: str | dict, **kwargs) -> NavEvent``: MoveAhead, MoveBack, MoveLeft, MoveRight,
  RotateLeft, RotateRight (``rotateStepDegrees`` = 45), LookUp, LookDown, Pass, and
  ``Teleport(position={x, y, z}, rotation={y} | float, horizon)``.
- ``last_event``; ``stop()`` (safe to call twice); usable as a context manager.
- ``pose_graph(scene) -> PoseGraph``: the ObjectNav pose graph of a scene for this backend.
- ``layout() -> dict``: top-down layout of the loaded scene for maps and videos.

:class:`NavEvent` carries the frame (H, W, 3 uint8), the depth frame (H, W float32 metres, when
asked for), AI2-THOR metadata keys (``lastAction``, ``lastActionSuccess``, ``errorMessage``,
``sceneName``, ``agent{position, rotation, cameraHorizon}``) and ``visible_types``: the object
types with an instance visible to the agent (AI2-THOR's visibility rule, 1.5 m).

- :class:`AI2ThorBackend`: the genuine ``ai2thor.controller.Controller`` (``pip install
  'thorgym[ai2thor]'``), on Unity or on ``thorgym-thor`` (``controller_kwargs=
  {"local_executable_path": <path of thorgym-thor>}``). A dead or silent AI2-THOR process
  raises :class:`BackendDied` (after ``timeout`` seconds at most); :meth:`AI2ThorBackend.restart`
  starts a fresh one.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thorgym.tasks import objectnav as task

__all__ = [
    "AI2ThorBackend",
    "BackendDied",
    "BackendUnavailable",
    "NavEvent",
    "make_backend",
    "objectnav_simulator",
]


class BackendUnavailable(RuntimeError):
    """The backend cannot be started here; the message says what to install or set."""


class BackendDied(RuntimeError):
    """The backend process exited or did not answer in time."""


@dataclass
class NavEvent:
    """What a backend returns after reset or a step (one agent)."""

    frame: np.ndarray
    depth_frame: np.ndarray | None
    metadata: dict[str, Any]
    visible_types: frozenset[str] = frozenset()
    raw: Any = field(default=None, repr=False)

    @property
    def success(self) -> bool:
        return bool(self.metadata.get("lastActionSuccess", True))

    @property
    def pose(self) -> tuple[float, float, float, float]:
        """(x, z, rotation, horizon) of the agent."""
        a = self.metadata["agent"]
        return (
            float(a["position"]["x"]),
            float(a["position"]["z"]),
            float(a["rotation"]["y"]) % 360.0,
            float(a["cameraHorizon"]),
        )

    def with_action(self, action: str, ok: bool, message: str = "") -> NavEvent:
        """The same state after an action that changed nothing (Done, or an action the task
        forbids)."""
        meta = {**self.metadata, "lastAction": action, "lastActionSuccess": ok}
        meta["errorMessage"] = message
        return NavEvent(self.frame, self.depth_frame, meta, self.visible_types, self.raw)


# -- the built-in simulator ----------------------------------------------------------------------
def objectnav_simulator(
    scenes: list[str],
    *,
    width: int,
    height: int,
    depth: bool = False,
    device: str = "cpu",
    grid_size: float = task.GRID_SIZE,
    visibility_distance: float = task.VISIBILITY_DISTANCE,
    field_of_view: float = task.FIELD_OF_VIEW,
    compile: bool = False,
    rotate_step_degrees: float = task.ROTATE_DEGREES,
    instance_segmentation: bool = False,
) -> Any:
    """A :class:`thorgym.sim.BatchedSimulator` (one world per scene) with navigation settings
    (ObjectNav's by default: 45° turns), RGB (+ depth) frames and, when asked, instance
    segmentation frames (visibility comes from the sim either way)."""
    from thorgym.sim import BatchedSimulator

    return BatchedSimulator(
        scenes,
        width=width,
        height=height,
        grid_size=grid_size,
        rotate_step_degrees=rotate_step_degrees,
        visibility_distance=visibility_distance,
        field_of_view=field_of_view,
        render_depth=depth,
        render_instance_segmentation=instance_segmentation,
        device=device,
        compile=compile,
    )


def sim_layout(world: Any) -> dict[str, Any]:
    """Top-down layout of a simulator world: bounds, wall and object footprints (x0, z0, x1, z1)."""
    spec = world.spec
    walls = [(float(lo[0]), float(lo[2]), float(hi[0]), float(hi[2])) for lo, hi in spec.walls]
    objects = [
        (o.object_type, float(o.lo[0]), float(o.lo[2]), float(o.hi[0]), float(o.hi[2])) for o in world.objects
    ]
    return {
        "bounds": tuple(float(v) for v in spec.bounds),
        "walls": walls,
        "objects": objects,
    }


# -- the genuine ai2thor client ------------------------------------------------------------------
def _is_thorgym_thor(path: str | None) -> bool:
    return bool(path) and Path(str(path)).name.startswith("thorgym-thor")


def _stop_spinning_at_eof(server: Any) -> None:
    """Make the client's FIFO reads return at end of file.

    ``ai2thor.fifo_server.FifoServer._read_with_timeout`` (5.0.0) keeps polling a pipe whose
    writer has exited until the timeout expires (select says readable, read returns b"").
    Returning what was read at EOF lets the client report the exit at once.
    """
    if server is None or not hasattr(server, "_read_with_timeout"):
        return
    import select
    import time

    def read(server_pipe: Any, message_size: int, timeout: float | None) -> bytes:
        if timeout is None:
            return server_pipe.read(message_size)
        deadline = time.monotonic() + timeout
        parts = []
        while message_size > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Reading from AI2-THOR timed out (after {timeout}s)")
            r, _, _ = select.select([server_pipe], [], [], left)
            if server_pipe in r:
                part = os.read(server_pipe.fileno(), message_size)
                if not part:  # end of file: the process has exited
                    break
                parts.append(part)
                message_size -= len(part)
        return b"".join(parts)

    server._read_with_timeout = read


class AI2ThorBackend:
    """``ai2thor.controller.Controller`` behind the backend contract.

    Args:
        width, height, depth: frame size and whether to render depth.
        instance_segmentation: also render instance segmentation frames (``event.raw``).
        timeout: seconds to wait for any answer of the AI2-THOR process (then
            :class:`BackendDied`); start-up may take ``start_timeout``.
        controller_kwargs: passed to ``Controller`` (``local_executable_path``, ``x_display``,
            ``platform``, ``commit_id``, …).
        controller: an ``ai2thor.controller.Controller`` already started to drive instead of
            starting one (then ``restart`` is not possible).
    """

    name = "ai2thor"

    def __init__(
        self,
        width: int = 128,
        height: int = 128,
        depth: bool = False,
        timeout: float = 60.0,
        start_timeout: float = 300.0,
        field_of_view: float = task.FIELD_OF_VIEW,
        visibility_distance: float = task.VISIBILITY_DISTANCE,
        grid_size: float = task.GRID_SIZE,
        controller_kwargs: Mapping[str, Any] | None = None,
        rotate_step_degrees: float = task.ROTATE_DEGREES,
        instance_segmentation: bool = False,
        controller: Any = None,
    ) -> None:
        self.width, self.height, self.depth = width, height, depth
        self.instance_segmentation = bool(instance_segmentation)
        self.rotate_step_degrees = rotate_step_degrees
        self.timeout, self.start_timeout = float(timeout), float(start_timeout)
        self.field_of_view = field_of_view
        self.visibility_distance = visibility_distance
        self.grid_size = grid_size
        self.controller_kwargs = dict(controller_kwargs or {})
        self._controller: Any = None
        self.scene: str | None = None
        self.last_event: NavEvent | None = None
        self._graphs: dict[str, task.PoseGraph] = {}
        if controller is not None:
            self._controller = controller
            return
        self._check_available()

    def _check_available(self) -> None:
        try:
            import ai2thor.controller  # noqa: F401
        except ImportError as e:
            raise BackendUnavailable(
                "backend='ai2thor' needs the ai2thor package: pip install 'thorgym[ai2thor]' "
                "(or use backend='sim', the built-in simulator)"
            ) from e
        kw = self.controller_kwargs
        exe = kw.get("local_executable_path")
        if exe is not None and not Path(str(exe)).is_file():
            raise BackendUnavailable(
                f"local_executable_path {exe!r} does not exist; to run the ai2thor client on the "
                "built-in simulator pass local_executable_path=$(which thorgym-thor)"
            )
        if (
            sys.platform.startswith("linux")
            and not kw.get("x_display")
            and not os.environ.get("DISPLAY")
            and kw.get("platform") is None
        ):
            if _is_thorgym_thor(exe):
                kw["x_display"] = ":0"  # the client insists on one; thorgym-thor never uses it
            else:
                raise BackendUnavailable(
                    "AI2-THOR's Unity build needs an X display on Linux and none is set: start "
                    "one (sudo ai2thor-xorg start) and pass controller_kwargs={'x_display': ':0'} "
                    "or set DISPLAY; or pass controller_kwargs={'platform': CloudRendering}; or "
                    "run the ai2thor client on the built-in simulator with "
                    "controller_kwargs={'local_executable_path': '$(which thorgym-thor)'}"
                )

    def _start(self, scene: str) -> None:
        from ai2thor.controller import Controller

        kw = {
            "scene": scene,
            "width": self.width,
            "height": self.height,
            "gridSize": self.grid_size,
            "rotateStepDegrees": self.rotate_step_degrees,
            "visibilityDistance": self.visibility_distance,
            "fieldOfView": self.field_of_view,
            "renderDepthImage": self.depth,
            **({"renderInstanceSegmentation": True} if self.instance_segmentation else {}),
            # Start-up (and scene loading, see reset) may be slow; steps get `timeout`.
            "server_timeout": self.start_timeout,
            "server_start_timeout": self.start_timeout,
            **self.controller_kwargs,
        }
        saved = None
        if _is_thorgym_thor(kw.get("local_executable_path")):
            # The client would otherwise probe Vulkan devices with vulkaninfo.
            saved = os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        try:
            self._controller = Controller(**kw)
        except (ValueError, TypeError):
            raise
        except Exception as e:  # download failure, missing build, start-up timeout …
            raise BackendUnavailable(
                f"could not start AI2-THOR ({type(e).__name__}: {e}). The Unity build is "
                "downloaded on first use (internet needed) and needs an X display or "
                "platform=CloudRendering; to run the ai2thor client on the built-in simulator "
                "pass controller_kwargs={'local_executable_path': '$(which thorgym-thor)'}"
            ) from e
        finally:
            if saved is not None:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        self._set_timeout(self.timeout)
        _stop_spinning_at_eof(getattr(self._controller, "server", None))

    def _set_timeout(self, seconds: float) -> None:
        server = getattr(self._controller, "server", None)
        if server is not None and hasattr(server, "timeout"):
            server.timeout = seconds

    @property
    def controller(self) -> Any:
        if self._controller is None:
            raise RuntimeError("the backend is not started (call reset(scene)) or was stopped")
        return self._controller

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, KeyError):
            raise
        except Exception as e:  # TimeoutError, BrokenPipeError, "Unity process has exited", …
            raise BackendDied(f"AI2-THOR stopped answering ({type(e).__name__}: {e})") from e

    def reset(self, scene: str, **init: Any) -> NavEvent:
        if self._controller is None:
            self._start(scene)
            ev = self._controller.last_event
        else:
            self._set_timeout(self.start_timeout)
            try:
                ev = self._call(self._controller.reset, scene, **init)
            finally:
                self._set_timeout(self.timeout)
        self.scene = scene
        return self._wrap(ev)

    def step(self, action: str | Mapping[str, Any], **kwargs: Any) -> NavEvent:
        if isinstance(action, Mapping):
            kwargs = {**action, **kwargs}
            action = kwargs.pop("action")
        if action in ("Teleport", "TeleportFull"):
            kwargs.setdefault("standing", True)
            if isinstance(kwargs.get("rotation"), int | float):
                kwargs["rotation"] = {"x": 0.0, "y": float(kwargs["rotation"]), "z": 0.0}
            pos = kwargs.get("position")
            if pos is not None and "y" not in pos and self.last_event is not None:
                y = self.last_event.metadata["agent"]["position"]["y"]
                kwargs["position"] = {**pos, "y": y}
        return self._wrap(self._call(self.controller.step, action=action, **kwargs))

    def _raw_step(self, **kwargs: Any) -> Any:
        return self._call(self.controller.step, **kwargs)

    def _wrap(self, ev: Any) -> NavEvent:
        meta = ev.metadata
        types = frozenset(o["objectType"] for o in meta.get("objects", ()) if o.get("visible"))
        depth = ev.depth_frame if self.depth else None
        self.last_event = NavEvent(ev.frame, depth, meta, types, raw=ev)
        return self.last_event

    def pose_graph(self, scene: str) -> task.PoseGraph:
        """Pose graph read from the controller (GetReachablePositions, Teleport); the scene must
        be loaded. Visibility per target costs one step per candidate pose (cached)."""
        if scene not in self._graphs:
            if self.scene != scene:
                self.reset(scene)
            self._graphs[scene] = task.pose_graph_from_controller(
                self._raw_step,
                scene,
                grid_size=self.grid_size,
                visibility_distance=self.visibility_distance,
                field_of_view=self.field_of_view,
                aspect=self.width / self.height,
            )
        return self._graphs[scene]

    def layout(self) -> dict[str, Any]:
        ev = self.last_event
        objects = []
        bounds = None
        if ev is not None:
            for o in ev.metadata.get("objects", ()):
                bb = o.get("axisAlignedBoundingBox") or {}
                c, s = bb.get("center"), bb.get("size")
                if not c or not s:
                    continue
                objects.append(
                    (
                        o["objectType"],
                        c["x"] - s["x"] / 2,
                        c["z"] - s["z"] / 2,
                        c["x"] + s["x"] / 2,
                        c["z"] + s["z"] / 2,
                    )
                )
            sb = ev.metadata.get("sceneBounds") or {}
            if sb.get("center") and sb.get("size"):
                c, s = sb["center"], sb["size"]
                bounds = (
                    c["x"] - s["x"] / 2,
                    c["z"] - s["z"] / 2,
                    c["x"] + s["x"] / 2,
                    c["z"] + s["z"] / 2,
                )
        if bounds is None and objects:
            arr = np.array([o[1:] for o in objects])
            bounds = (arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
        return {"bounds": bounds or (-3.0, -3.0, 3.0, 3.0), "walls": [], "objects": objects}

    @property
    def pid(self) -> int | None:
        """Process id of the AI2-THOR executable (None when not running)."""
        c = self._controller
        if c is None:
            return None
        proc = getattr(getattr(c, "server", None), "unity_proc", None)
        if proc is not None:
            return proc.pid
        return getattr(c, "unity_pid", None)

    def _kill(self) -> None:
        pid = self.pid
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc = getattr(getattr(self._controller, "server", None), "unity_proc", None)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except Exception:
                pass

    def restart(self) -> NavEvent:
        """Kill the AI2-THOR process, start a fresh one and load the current scene."""
        scene = self.scene
        self._kill()
        try:
            if self._controller is not None:
                self._controller.stop()
        except Exception:
            pass
        self._controller = None
        self.last_event = None
        if scene is None:
            raise RuntimeError("restart() before any scene was loaded")
        return self.reset(scene)

    def stop(self) -> None:
        if self._controller is not None:
            try:
                self._controller.stop()
            except Exception:
                self._kill()
        self._controller = None
        self.last_event = None

    def __enter__(self) -> AI2ThorBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_backend(backend: str, **kwargs: Any) -> AI2ThorBackend:
    """A controller-contract backend by name: "ai2thor" (the built-in simulator, "sim", is driven
    batched through ``thorgym.envs.worlds.SimWorlds`` instead)."""
    if backend == "ai2thor":
        kwargs.pop("device", None)
        return AI2ThorBackend(**kwargs)
    raise ValueError(f"unknown backend {backend!r}: use 'sim' (built-in) or 'ai2thor'")
