"""``thorgym-thor``: the Unity side of AI2-THOR's FIFO protocol, served by ``thorgym.sim``.

The genuine ``ai2thor`` client (5.0.0) drives it like a Unity build::

    from ai2thor.controller import Controller
    c = Controller(local_executable_path=find_executable(), x_display=":0",
                   scene="FloorPlan1", width=128, height=128, renderDepthImage=True)
    c.step("MoveAhead").frame.shape  # (128, 128, 3)

Protocol (what ``ai2thor/fifo_server.py`` expects). The client creates two FIFOs and starts the
executable with their paths in ``AI2THOR_FIFO_SERVER_PIPE_PATH`` (we write replies there) and
``AI2THOR_FIFO_CLIENT_PIPE_PATH`` (we read actions there), plus
``-screen-width W -screen-height H`` on the command line. A message is a series of fields, each
a ``!BI`` header (field type, body length) followed by the body, closed by an END_OF_MESSAGE
header (type 255, length 0). The client sends one ACTION field (JSON, with ``sequenceId``); we
answer with a METADATA field (msgpack: ``agents`` = one AI2-THOR metadata dict per agent,
``activeAgentId``, ``sequenceId`` echoed, ``thirdPartyCameras``) and per-agent image fields:
RGB_IMAGE (H·W·3 uint8), DEPTH_IMAGE (H·W float32 metres, ``depthFormat: "Meters"``) and
IDS_IMAGE (H·W·3 uint8, with ``colors`` = ``[{name, color}]`` in the metadata so the client
builds ``instance_masks``). Images are sent bottom row first, as Unity does; the client flips
them back. We send the first message unprompted right after start (sequenceId 0).

The client's start-up sequence is: first message, ``ChangeResolution`` (below 300×300),
``GetScenesInBuild`` (scene names with and without ``_physics``), ``Reset(sceneName)``, then
``Initialize(**init)``. Reset only records the scene; the world is (re)built on Initialize (or
on the first action after Reset), so start-up does not import torch before it is needed.

Errors: an unknown action or a bad argument (``ValueError`` from ``thorgym.sim``) is answered
with ``lastActionSuccess=False``, the ``errorMessage`` and an ``errorCode`` (InvalidAction,
MissingArguments, InvalidArgument) on which the client raises ``ValueError``. Malformed input
(bad JSON, no ACTION field, an unknown field type with a small body) gets the same kind of error
reply and the server carries on; input after which the stream cannot be re-synchronised (a field
longer than :data:`MAX_FIELD_BYTES` or fields adding up to more than :data:`MAX_MESSAGE_BYTES`,
a message closed or left incomplete for ``THORGYM_THOR_MESSAGE_TIMEOUT``
seconds) gets an error reply, then the process exits with status 1. When the client closes its
pipe (or our parent process dies) the server exits with status 0. Logs go to stderr only.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import struct
import sys
import threading
import time
import traceback
from enum import IntEnum
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

__all__ = [
    "FieldType",
    "MAX_FIELD_BYTES",
    "MAX_MESSAGE_BYTES",
    "ThorServer",
    "bench_fifo",
    "find_executable",
    "main",
    "serve",
]


class FieldType(IntEnum):
    """Field types of AI2-THOR's FIFO protocol (values as in ``ai2thor.fifo_server``)."""

    METADATA = 1
    ACTION = 2
    ACTION_RESULT = 3
    RGB_IMAGE = 4
    DEPTH_IMAGE = 5
    NORMALS_IMAGE = 6
    FLOWS_IMAGE = 7
    CLASSES_IMAGE = 8
    IDS_IMAGE = 9
    THIRD_PARTY_IMAGE = 10
    METADATA_PATCH = 11
    THIRD_PARTY_DEPTH = 12
    THIRD_PARTY_NORMALS = 13
    THIRD_PARTY_IMAGE_IDS = 14
    THIRD_PARTY_CLASSES = 15
    THIRD_PARTY_FLOW = 16
    END_OF_MESSAGE = 255


HEADER = struct.Struct("!BI")
#: A field longer than this is taken as a corrupt header: error reply, then exit.
MAX_FIELD_BYTES = 64 * 1024 * 1024
#: A message whose fields add up to more than this is refused the same way (the client's actions
#: are a few hundred bytes; without a total cap many large fields could exhaust memory).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Error messages are cut to this many characters (a huge action name would be echoed whole).
MAX_ERROR_CHARS = 2000
#: sequenceId values msgpack can encode (others are replaced by the next id, as a missing one is).
_SEQ_MIN, _SEQ_MAX = -(2**63), 2**64 - 1
#: Seconds the rest of a message may take once its first byte has arrived.
DEFAULT_MESSAGE_TIMEOUT_S = 30.0
#: Reported in Initialize's actionReturn; the client uses them only to convert depth formats.
CAMERA_NEAR_PLANE = 0.1
CAMERA_FAR_PLANE = 20.0

_KNOWN_FIELDS = {f.value for f in FieldType}
_EOM = HEADER.pack(FieldType.END_OF_MESSAGE, 0)
# Initialize keys the client may send that thorgym.sim has no use for (always accepted).
_IGNORED_INIT = {"fastActionEmit", "continuous", "continuousMode"}
# Render passes thorgym.sim does not produce: accepted when off, an error when requested.
_UNSUPPORTED_RENDER = {"renderNormalsImage", "renderFlowImage"}
_DEPRECATED = {
    "renderObjectImage": "renderInstanceSegmentation",
    "renderClassImage": "renderSemanticSegmentation",
}


def _log(msg: str) -> None:
    print(f"thorgym-thor[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


# -- wire format ------------------------------------------------------------------------------
class ProtocolError(Exception):
    """Malformed input. ``fatal``: the byte stream can no longer be trusted (exit after reply)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class PipeReader:
    """Exact-length reads from a file descriptor, with an optional deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()

    def read_exact(self, n: int, timeout: float | None) -> bytes:
        """Return exactly ``n`` bytes.

        Raises ``EOFError`` when the writer closed the pipe first and ``TimeoutError`` when the
        bytes did not arrive within ``timeout`` seconds (``None``: wait indefinitely). Works on
        blocking and non-blocking descriptors.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buf) < n:
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"waited {timeout:g}s for {n - len(self._buf)} more byte(s) of a message"
                    )
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, max(65536, n - len(self._buf)))
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError(f"pipe closed with {len(self._buf)} of {n} byte(s) read")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def read_message(
    reader: PipeReader, timeout: float | None
) -> tuple[list[tuple[int, bytes]], list[str]]:
    """Read one message: its (field type, body) pairs and the problems found on the way.

    Waits indefinitely for the first header byte, then at most ``timeout`` seconds for the rest.
    Unknown field types are reported in the problem list and their bodies skipped. Raises
    ``EOFError`` on a clean close between messages and :class:`ProtocolError` (fatal) when the
    stream is corrupt or stalls mid-message.
    """
    fields: list[tuple[int, bytes]] = []
    problems: list[str] = []
    total = 0
    # The first byte may take forever (an idle client); once it has come, the rest of the
    # header and of the message must follow within the timeout.
    head = reader.read_exact(1, None)  # EOFError here: a clean close between messages
    while True:
        try:
            header = head + reader.read_exact(HEADER.size - len(head), timeout)
        except EOFError:
            raise ProtocolError("pipe closed in the middle of a message", fatal=True) from None
        except TimeoutError as e:
            raise ProtocolError(f"incomplete message: {e}", fatal=True) from None
        head = b""
        ftype, length = HEADER.unpack(header)
        if ftype == FieldType.END_OF_MESSAGE:
            return fields, problems
        name = FieldType(ftype).name if ftype in _KNOWN_FIELDS else None
        if length > MAX_FIELD_BYTES:
            raise ProtocolError(
                f"bad header: field type {ftype} ({name or 'unknown'}) claims {length} bytes "
                f"(limit {MAX_FIELD_BYTES}); stream cannot be re-synchronised",
                fatal=True,
            )
        total += length
        if total > MAX_MESSAGE_BYTES:
            raise ProtocolError(
                f"message too long: its fields add up to more than {MAX_MESSAGE_BYTES} bytes "
                "(limit MAX_MESSAGE_BYTES); stream cannot be re-synchronised",
                fatal=True,
            )
        try:
            body = reader.read_exact(length, timeout)
        except EOFError:
            raise ProtocolError("pipe closed in the middle of a message", fatal=True) from None
        except TimeoutError as e:
            raise ProtocolError(f"incomplete message: {e}", fatal=True) from None
        if name is None:
            problems.append(f"unknown field type {ftype} (length {length}) in message")
        else:
            fields.append((ftype, body))


def encode_message(metadata: dict[str, Any], images: list[tuple[int, bytes]]) -> bytes:
    """A reply: METADATA (msgpack), image fields in order, END_OF_MESSAGE."""
    body = msgpack.packb(metadata, default=_to_builtin, use_bin_type=True)
    parts = [HEADER.pack(FieldType.METADATA, len(body)), body]
    for ftype, data in images:
        parts += [HEADER.pack(ftype, len(data)), data]
    parts.append(_EOM)
    return b"".join(parts)


def _to_builtin(obj: Any) -> Any:
    """msgpack fallback for numpy / torch values that slip into metadata."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):  # torch.Tensor
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} in metadata")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _error_code(message: str) -> str:
    low = message.lower()
    if "unknown action" in low or "action must be" in low or "no 'action'" in low:
        return "InvalidAction"
    if "missing" in low:
        return "MissingArguments"
    return "InvalidArgument"


# -- the server state -------------------------------------------------------------------------
class ThorServer:
    """Turns decoded client messages into replies, on top of ``thorgym.sim.Controller``.

    Transport-free (``handle`` takes the fields of one message and returns the encoded reply),
    so it can be driven in-process as well as through the FIFOs by :func:`serve`.
    """

    def __init__(self, width: int = 300, height: int = 300, scene: str = "FloorPlan1") -> None:
        self.width = width
        self.height = height
        self.scene = scene
        self.init: dict[str, Any] = {}  # thorgym.sim init keywords other than scene/size
        self.controller: Any = None  # thorgym.sim.Controller, created on first need
        self.needs_reset = True  # Reset seen (or nothing loaded yet): rebuild before stepping
        self.sequence_id = 0
        self.agent_count = 1
        self._last_meta: list[dict[str, Any]] | None = None  # from the last full event
        self._last_images: list[tuple[int, bytes]] = []

    # - messages -
    def first_message(self) -> bytes:
        """The message sent unprompted at start-up (sequenceId 0)."""
        return self._stub_reply("", None, 0)

    def handle(self, fields: list[tuple[int, bytes]], problems: list[str] | None = None) -> bytes:
        """Reply to one message given its fields (and problems found while reading it)."""
        problems = list(problems or [])
        actions = [body for ftype, body in fields if ftype == FieldType.ACTION]
        others = sorted({FieldType(t).name for t, _ in fields if t != FieldType.ACTION})
        if others:
            problems.append(f"unexpected field(s) from the client: {', '.join(others)}")
        if not actions:
            problems.append("message has no ACTION field")
        elif len(actions) > 1:
            problems.append(f"message has {len(actions)} ACTION fields; expected one")
        if problems:
            return self._error_reply("", "; ".join(problems), "InvalidAction", self._next_seq(None))
        try:
            action = json.loads(actions[0].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return self._error_reply(
                "", f"ACTION body is not valid JSON: {e}", "InvalidAction", self._next_seq(None)
            )
        except RecursionError:
            return self._error_reply(
                "",
                "ACTION body is nested too deeply to decode (an action is a flat JSON object)",
                "InvalidAction",
                self._next_seq(None),
            )
        if not isinstance(action, dict):
            return self._error_reply(
                "",
                f"ACTION body must be a JSON object, got {type(action).__name__}",
                "InvalidAction",
                self._next_seq(None),
            )
        return self.handle_action(action)

    def handle_action(self, action: dict[str, Any]) -> bytes:
        """Run one decoded action dict (``{"action": name, "sequenceId": n, **args}``)."""
        action = dict(action)
        seq = self._next_seq(action.pop("sequenceId", None))
        name = action.pop("action", None)
        agent = action.get("agentId", 0)
        if not isinstance(name, str):
            return self._error_reply(
                "", f"ACTION has no 'action' name (got {name!r})", "InvalidAction", seq, agent
            )
        render_image = action.pop("renderImage", True) is not False
        for old, new in _DEPRECATED.items():
            if old in action:
                action.setdefault(new, action.pop(old))
        try:
            if name == "Initialize":
                return self._initialize(action, seq, render_image)
            if name == "Reset":
                return self._reset(action, seq)
            staged = self.controller is None or self.needs_reset
            if staged and name == "ChangeResolution":
                return self._staged_resolution(action, seq)
            if staged and name == "GetScenesInBuild":
                if set(action) - {"agentId"}:
                    raise ValueError(f"GetScenesInBuild: unknown argument(s) {sorted(action)}")
                return self._stub_reply(name, _scenes_in_build(), seq)
            self._ensure_world()
            event = self.controller.step(name, **action)
            return self._event_reply(event, seq, render_image)
        except ValueError as e:
            return self._error_reply(name, str(e), _error_code(str(e)), seq, agent)
        except Exception as e:  # a simulator bug: report it, keep serving
            _log(f"internal error in {name}:\n{traceback.format_exc()}")
            return self._error_reply(
                name, f"internal error: {type(e).__name__}: {e}", "UnhandledException", seq, agent
            )

    def protocol_error_reply(self, message: str) -> bytes:
        """Error reply for input that could not be parsed into an action."""
        return self._error_reply("", message, "InvalidAction", self._next_seq(None))

    # - actions handled here -
    def _initialize(self, params: dict[str, Any], seq: int, render_image: bool) -> bytes:
        params.pop("agentId", None)
        for key in list(params):
            if key in _IGNORED_INIT:
                params.pop(key)
            elif key in _UNSUPPORTED_RENDER:
                if params.pop(key):
                    raise ValueError(f"Initialize: {key}=True is not supported by thorgym-thor")
        scene = params.pop("scene", self.scene)
        width = params.pop("width", self.width)
        height = params.pop("height", self.height)
        # As Unity: what this Initialize does not name takes its default, whatever an earlier
        # Initialize set (the client sends all of its current settings every time).
        init = dict(params)
        kwargs = {"scene": scene, "width": width, "height": height, **init}
        from thorgym.sim import Controller  # torch import: only once a world is needed

        if self.controller is None:
            self.controller = Controller(**kwargs)
            event = self.controller.last_event
        else:
            self.controller.initialization_parameters = {}
            event = self.controller.reset(**kwargs)
        self.scene, self.width, self.height, self.init = scene, width, height, init
        self.needs_reset = False
        self.agent_count = len(event.events)
        ret = {"cameraNearPlane": CAMERA_NEAR_PLANE, "cameraFarPlane": CAMERA_FAR_PLANE}
        return self._event_reply(event, seq, render_image, action_return=ret)

    def _reset(self, params: dict[str, Any], seq: int) -> bytes:
        from thorgym.sim.scenes import parse_scene

        scene = params.pop("sceneName", params.pop("scene", None))
        params.pop("agentId", None)
        if scene is None:
            raise ValueError("Reset: missing required argument 'sceneName'")
        if params:
            raise ValueError(f"Reset: unknown argument(s) {sorted(params)}")
        if scene == "Procedural":
            raise ValueError(
                "Reset: procedural (ProcTHOR) houses are not supported by thorgym-thor"
            )
        parse_scene(scene)
        self.scene = scene
        self.needs_reset = True
        return self._stub_reply("Reset", None, seq)

    def _staged_resolution(self, params: dict[str, Any], seq: int) -> bytes:
        params.pop("agentId", None)
        unknown = set(params) - {"x", "y"}
        if unknown:
            raise ValueError(f"ChangeResolution: unknown argument(s) {sorted(unknown)}")
        from thorgym.sim.batch import MAX_RESOLUTION

        x, y = params.get("x", self.width), params.get("y", self.height)
        for key, v in (("x", x), ("y", y)):  # the same bounds as thorgym.sim, checked now
            if isinstance(v, bool) or not isinstance(v, int) or not 32 <= v <= MAX_RESOLUTION:
                raise ValueError(
                    f"ChangeResolution: {key} must be an integer between 32 and {MAX_RESOLUTION}, got {v!r}"
                )
        self.width, self.height = x, y
        return self._stub_reply("ChangeResolution", None, seq)

    def _ensure_world(self) -> None:
        if self.controller is None or self.needs_reset:
            from thorgym.sim import Controller

            kwargs = {"scene": self.scene, "width": self.width, "height": self.height, **self.init}
            if self.controller is None:
                self.controller = Controller(**kwargs)
            else:
                self.controller.reset(**kwargs)
            self.needs_reset = False

    # - replies -
    def _next_seq(self, given: Any) -> int:
        if isinstance(given, int) and not isinstance(given, bool) and _SEQ_MIN <= given <= _SEQ_MAX:
            self.sequence_id = given
        else:
            self.sequence_id += 1
        return self.sequence_id

    def _event_reply(
        self, event: Any, seq: int, render_image: bool = True, action_return: Any = None
    ) -> bytes:
        events = list(event.events)
        agents = []
        rgb: list[tuple[int, bytes]] = []
        depth: list[tuple[int, bytes]] = []
        ids: list[tuple[int, bytes]] = []
        classes: list[tuple[int, bytes]] = []
        for ev in events:
            meta = dict(ev.metadata)
            if action_return is not None:
                meta["actionReturn"] = action_return
            meta.setdefault("errorCode", None)
            meta.setdefault("colors", None)  # the Controller's colour table, when it rendered one
            meta.setdefault("thirdPartyCameras", [])
            meta["depthFormat"] = "Meters"
            agents.append(meta)
            if render_image and ev.frame is not None:
                rgb.append((FieldType.RGB_IMAGE, _flipped(ev.frame, np.uint8)))
            if ev.depth_frame is not None:
                depth.append((FieldType.DEPTH_IMAGE, _flipped(ev.depth_frame, np.float32)))
            if ev.instance_segmentation_frame is not None:
                ids.append((FieldType.IDS_IMAGE, _flipped(ev.instance_segmentation_frame, np.uint8)))
            semantic = getattr(ev, "semantic_segmentation_frame", None)
            if semantic is not None:
                classes.append((FieldType.CLASSES_IMAGE, _flipped(semantic, np.uint8)))
        self.agent_count = len(agents)
        self.width = int(agents[0]["screenWidth"])
        self.height = int(agents[0]["screenHeight"])
        self._last_meta = agents
        # Third-party cameras are shared by the agents: their frames go once, in camera order.
        first = events[0]
        third: list[tuple[int, bytes]] = []
        for ftype, frames, dtype in (
            (FieldType.THIRD_PARTY_IMAGE, getattr(first, "third_party_camera_frames", []), np.uint8),
            (FieldType.THIRD_PARTY_DEPTH, getattr(first, "third_party_depth_frames", []), np.float32),
            (
                FieldType.THIRD_PARTY_IMAGE_IDS,
                getattr(first, "third_party_instance_segmentation_frames", []),
                np.uint8,
            ),
            (
                FieldType.THIRD_PARTY_CLASSES,
                getattr(first, "third_party_semantic_segmentation_frames", []),
                np.uint8,
            ),
        ):
            if ftype == FieldType.THIRD_PARTY_IMAGE and not render_image:
                continue
            third += [(ftype, _flipped(f, dtype)) for f in frames]
        self._last_images = rgb + depth + ids + classes + third
        active = int(event.metadata.get("agentId", 0))
        return self._message(agents, self._last_images, active, seq)

    def _message(
        self, agents: list[dict[str, Any]], images: list[tuple[int, bytes]], active: int, seq: int
    ) -> bytes:
        active = active if isinstance(active, int) and 0 <= active < len(agents) else 0
        metadata = {
            "agents": agents,
            "activeAgentId": active,
            "sequenceId": seq,
            "thirdPartyCameras": agents[0].get("thirdPartyCameras", []) if agents else [],
        }
        return encode_message(metadata, images)

    def _stub_reply(self, action: str, action_return: Any, seq: int) -> bytes:
        """Reply without a loaded world: screen size, scene name, no objects, no images."""
        agents = [
            _blank_agent_meta(i, self.scene, action, action_return, self.width, self.height)
            for i in range(self.agent_count)
        ]
        self._last_meta, self._last_images = None, []
        return self._message(agents, [], 0, seq)

    def _error_reply(self, action: str, message: str, code: str, seq: int, agent: Any = 0) -> bytes:
        if len(message) > MAX_ERROR_CHARS:
            message = f"{message[:MAX_ERROR_CHARS]}… ({len(message)} characters in all)"
        if len(action) > 200:
            action = action[:200] + "…"
        _log(f"error reply (sequenceId {seq}): {message}")
        if self._last_meta is not None:
            agents = [dict(m) for m in self._last_meta]
            images = self._last_images
        else:
            agents = [
                _blank_agent_meta(i, self.scene, action, None, self.width, self.height)
                for i in range(self.agent_count)
            ]
            images = []
        for m in agents:
            m.update(
                lastAction=action,
                lastActionSuccess=False,
                errorMessage=message,
                errorCode=code,
                actionReturn=None,
            )
        return self._message(agents, images, agent, seq)


def _flipped(img: Any, dtype: Any) -> bytes:
    """Image bytes bottom row first (Unity's order; the client flips them back)."""
    return np.ascontiguousarray(np.asarray(img, dtype=dtype)[::-1]).tobytes()


def _scenes_in_build() -> list[str]:
    from thorgym.sim.scenes import all_scenes

    names = all_scenes()
    return names + [n + "_physics" for n in names]


def _blank_agent_meta(
    agent: int, scene: str, action: str, action_return: Any, width: int, height: int
) -> dict[str, Any]:
    zero = {"x": 0.0, "y": 0.0, "z": 0.0}
    return {
        "sceneName": scene,
        "lastAction": action,
        "lastActionSuccess": True,
        "errorMessage": "",
        "errorCode": None,
        "actionReturn": action_return,
        "agentId": agent,
        "agent": {
            "name": "agent",
            "position": dict(zero),
            "rotation": dict(zero),
            "cameraHorizon": 0.0,
            "isStanding": True,
            "inHighFrictionArea": False,
        },
        "objects": [],
        "inventoryObjects": [],
        "fov": 90.0,
        "cameraPosition": dict(zero),
        "screenWidth": width,
        "screenHeight": height,
        "colors": None,
        "thirdPartyCameras": [],
        "depthFormat": "Meters",
    }


# -- transport --------------------------------------------------------------------------------
def serve(
    server_pipe: str,
    client_pipe: str,
    width: int = 300,
    height: int = 300,
    message_timeout: float | None = DEFAULT_MESSAGE_TIMEOUT_S,
) -> int:
    """Serve one client over the two FIFOs until it closes them; return the exit status.

    0: the client closed the pipe (or stopped reading); 1: the input stream was corrupt or
    stalled mid-message (an error reply was sent first when possible).
    """
    server = ThorServer(width=width, height=height)
    # Non-blocking open: returns at once. select() on it then waits for a writer's data (or a
    # writer that came and went = EOF), so a client that never sends cannot wedge us in open().
    in_fd = os.open(client_pipe, os.O_RDONLY | os.O_NONBLOCK)
    out_fd = -1
    try:
        out_fd = os.open(server_pipe, os.O_WRONLY)  # blocks until the client opens it to read
        _write_all(out_fd, server.first_message())
        reader = PipeReader(in_fd)
        while True:
            try:
                fields, problems = read_message(reader, message_timeout)
            except EOFError:
                _log("client closed the pipe; exiting")
                return 0
            except ProtocolError as e:
                _log(f"protocol error: {e}")
                _write_all(out_fd, server.protocol_error_reply(str(e)))
                if e.fatal:
                    _log("input stream cannot be trusted any more; exiting")
                    return 1
                continue
            try:
                reply = server.handle(fields, problems)
            except Exception as e:  # a bug while building the reply: report it, keep serving
                _log(f"internal error:\n{traceback.format_exc()}")
                reply = server.protocol_error_reply(f"internal error: {type(e).__name__}: {e}")
            _write_all(out_fd, reply)
    except BrokenPipeError:
        _log("client stopped reading; exiting")
        return 0
    finally:
        for fd in (in_fd, out_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _watch_parent(ppid: int, interval: float = 0.5) -> None:
    """Exit when the launching process dies (the pipes may never be opened or closed then)."""
    while True:
        time.sleep(interval)
        if os.getppid() != ppid:
            _log(f"parent process {ppid} is gone; exiting")
            os._exit(0)


_USAGE = """usage: thorgym-thor [-screen-width W] [-screen-height H] [other Unity flags, ignored]

AI2-THOR's FIFO protocol served by thorgym.sim. Started by ai2thor's Controller:
  ai2thor.controller.Controller(local_executable_path=<path of thorgym-thor>, x_display=":0", ...)
Environment: AI2THOR_FIFO_SERVER_PIPE_PATH (replies are written there),
AI2THOR_FIFO_CLIENT_PIPE_PATH (actions are read there), THORGYM_THOR_MESSAGE_TIMEOUT (seconds a
started message may take to complete, default 30). Logs go to stderr."""


def _parse_args(argv: list[str]) -> dict[str, int] | None:
    """Screen size from Unity-style flags; None when help was asked for. Unknown flags ignored."""
    out = {"width": 300, "height": 300}
    keys = {"-screen-width": "width", "-screen-height": "height"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None
        if arg in keys:
            if i + 1 >= len(argv):
                raise ValueError(f"{arg} needs a value")
            value = int(argv[i + 1])
            if value <= 0:
                raise ValueError(f"{arg} must be positive, got {value}")
            out[keys[arg]] = value
            i += 1
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``thorgym-thor``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        size = _parse_args(args)
    except ValueError as e:
        print(f"thorgym-thor: {e}\n\n{_USAGE}", file=sys.stderr)
        return 2
    if size is None:
        print(_USAGE)
        return 0
    server_pipe = os.environ.get("AI2THOR_FIFO_SERVER_PIPE_PATH")
    client_pipe = os.environ.get("AI2THOR_FIFO_CLIENT_PIPE_PATH")
    if not server_pipe or not client_pipe:
        print(
            "thorgym-thor: AI2THOR_FIFO_SERVER_PIPE_PATH and AI2THOR_FIFO_CLIENT_PIPE_PATH must "
            f"be set (the ai2thor client sets them when it starts this program)\n\n{_USAGE}",
            file=sys.stderr,
        )
        return 2
    server_type = os.environ.get("AI2THOR_SERVER_TYPE", "FIFO")
    if server_type != "FIFO":
        _log(f"server type {server_type!r} is not supported; only FIFO")
        return 2
    try:
        timeout = float(os.environ.get("THORGYM_THOR_MESSAGE_TIMEOUT", DEFAULT_MESSAGE_TIMEOUT_S))
    except ValueError:
        timeout = float("nan")
    if not (0 <= timeout < float("inf")):
        _log(
            "THORGYM_THOR_MESSAGE_TIMEOUT must be a finite number of seconds >= 0 (0: no limit), "
            f"got {os.environ['THORGYM_THOR_MESSAGE_TIMEOUT']!r}"
        )
        return 2
    for path in (server_pipe, client_pipe):
        if not os.path.exists(path):
            _log(f"pipe {path} does not exist")
            return 2
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            _log(f"{path} is not a FIFO (the client creates both pipes with os.mkfifo)")
            return 2
    ppid = os.getppid()
    if ppid > 1:
        threading.Thread(target=_watch_parent, args=(ppid,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _log(f"serving {size['width']}x{size['height']} on {server_pipe} / {client_pipe}")
    return serve(server_pipe, client_pipe, size["width"], size["height"], timeout or None)


# -- helpers for users, tests and `thorgym bench` ----------------------------------------------
def find_executable() -> str:
    """Path of the ``thorgym-thor`` console script (on PATH, else next to this Python)."""
    found = shutil.which("thorgym-thor")
    if found:
        return found
    candidate = Path(sys.executable).parent / "thorgym-thor"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise FileNotFoundError(
        "thorgym-thor is neither on PATH nor next to the Python interpreter "
        f"({candidate}); install thorgym (pip install -e .) into this environment"
    )


def ai2thor_controller(**kwargs: Any) -> Any:
    """The genuine ``ai2thor.controller.Controller`` started on ``thorgym-thor``.

    Fills in ``local_executable_path`` and ``x_display`` (``$DISPLAY`` or ":0"; the client needs
    one on Linux but thorgym-thor never uses it). ``CUDA_VISIBLE_DEVICES`` is hidden from the
    client while it starts, since it would otherwise select a Vulkan device with ``vulkaninfo``.
    """
    try:
        from ai2thor.controller import Controller
    except ImportError as e:
        raise ImportError(
            "the ai2thor client package is needed: pip install 'thorgym[ai2thor]'"
        ) from e
    kwargs.setdefault("local_executable_path", find_executable())
    kwargs.setdefault("x_display", os.environ.get("DISPLAY") or ":0")
    saved = os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        return Controller(**kwargs)
    finally:
        if saved is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def bench_fifo(
    steps: int = 200, width: int = 128, height: int = 128, scene: str = "FloorPlan1"
) -> list[dict[str, Any]]:
    """Steps/s of the ai2thor client through thorgym-thor and of ``thorgym.sim.Controller``.

    Both run ``steps`` alternating MoveAhead / RotateRight in ``scene`` with RGB only, after 5
    untimed warm-up steps; start-up is not timed. The two are timed in interleaved rounds of
    about 50 steps so that a change in machine load affects both alike. Returns one record per
    mode: ``{"mode": "ai2thor-client" | "direct", "steps_per_s", "width", "height"}``.
    """
    from thorgym.sim import Controller

    actions = ["MoveAhead", "RotateRight"]
    rounds = max(1, min(4, steps // 50))
    sizes = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
    client = ai2thor_controller(scene=scene, width=width, height=height)
    try:
        direct = Controller(scene=scene, width=width, height=height)
        elapsed = {"ai2thor-client": 0.0, "direct": 0.0}
        steppers = {"ai2thor-client": client.step, "direct": direct.step}
        for step in steppers.values():
            for i in range(5):
                step(actions[i % 2])
        for n in sizes:
            for mode, step in steppers.items():
                t0 = time.perf_counter()
                for i in range(n):
                    step(actions[i % 2])
                elapsed[mode] += time.perf_counter() - t0
    finally:
        client.stop()
    return [
        {"mode": mode, "steps_per_s": steps / t, "width": width, "height": height}
        for mode, t in elapsed.items()
    ]
