"""``thorgym-thor`` end to end: the genuine ai2thor 5.0.0 client, and raw protocol abuse.

The ai2thor tests start the real ``ai2thor.controller.Controller`` on the installed
``thorgym-thor`` console script and compare what it returns with ``thorgym.sim.Controller`` run
directly. The raw tests drive the server through its FIFOs with malformed input and require an
error reply or an exit within a deadline (never a hang). Nothing here is skipped: a missing
executable or client package is a failure with a message saying what to install.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from thorgym.sim import Controller as SimController
from thorgym.sim.fifo_server import FieldType

HEADER = struct.Struct("!BI")
EOM = HEADER.pack(FieldType.END_OF_MESSAGE, 0)
W = H = 64


def _executable() -> str:
    found = shutil.which("thorgym-thor")
    if found:
        return found
    candidate = Path(sys.executable).parent / "thorgym-thor"
    if not candidate.is_file():
        pytest.fail(
            "thorgym-thor is not installed (not on PATH, not next to the interpreter at "
            f"{candidate}); run `pip install -e .` in this environment"
        )
    return str(candidate)


def _ai2thor_controller_class() -> Any:
    try:
        from ai2thor.controller import Controller
    except ImportError:
        pytest.fail("the ai2thor client package is required: pip install 'thorgym[ai2thor]'")
    return Controller


def _server_log(home: Path) -> str:
    log = home / ".ai2thor" / "log" / "unity.log"
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no unity.log)"


class _Client:
    """The genuine ai2thor client on thorgym-thor, with HOME redirected (its log lives there)."""

    def __init__(self, home: Path, **kwargs: Any) -> None:
        self.home = home
        saved = {k: os.environ.get(k) for k in ("HOME", "CUDA_VISIBLE_DEVICES")}
        os.environ["HOME"] = str(home)
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # else the client runs vulkaninfo
        try:
            self.controller = _ai2thor_controller_class()(
                local_executable_path=_executable(),
                x_display=":0",
                width=W,
                height=H,
                server_timeout=60.0,
                server_start_timeout=60.0,
                **kwargs,
            )
        except Exception as e:
            pytest.fail(f"ai2thor client failed to start on thorgym-thor: {e!r}\n{_server_log(home)}")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def step(self, action: str, **kwargs: Any) -> Any:
        try:
            return self.controller.step(action, **kwargs)
        except ValueError:
            raise
        except Exception as e:
            pytest.fail(f"{action} through thorgym-thor failed: {e!r}\n{_server_log(self.home)}")

    def stop(self) -> None:
        proc = self.controller.server.unity_proc
        self.controller.stop()
        proc.wait(timeout=10)


def _pose(meta: dict[str, Any]) -> tuple:
    a = meta["agent"]
    return (
        a["position"]["x"],
        a["position"]["y"],
        a["position"]["z"],
        a["rotation"]["y"],
        a["cameraHorizon"],
    )


def _drop(objects: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in o.items() if k != key} for o in objects]


def _same_step(got: Any, want: Any, label: str) -> None:
    gm, wm = got.metadata, want.metadata
    for key in ("lastAction", "lastActionSuccess", "errorMessage", "agentId"):
        assert gm[key] == wm[key], f"{label}: metadata[{key!r}] {gm[key]!r} != {wm[key]!r}"
    assert _pose(gm) == _pose(wm), f"{label}: pose {_pose(gm)} != {_pose(wm)}"
    for key in wm:  # everything else too (the client may add visibleBounds2D to objects)
        g = _drop(gm[key], "visibleBounds2D") if key == "objects" else gm[key]
        assert g == wm[key], f"{label}: metadata[{key!r}] differs"
    assert gm["screenWidth"] == W and gm["screenHeight"] == H
    assert got.frame.shape == (H, W, 3) and got.frame.dtype == np.uint8
    assert np.array_equal(got.frame, want.frame), f"{label}: RGB frames differ"
    if want.depth_frame is not None:
        assert got.depth_frame.dtype == np.float32 and got.depth_frame.shape == (H, W)
        np.testing.assert_allclose(got.depth_frame, want.depth_frame, rtol=0, atol=1e-6)


# -- the genuine client ----------------------------------------------------------------------
SINGLE_ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("MoveAhead", {}),
    ("RotateRight", {}),
    ("MoveAhead", {}),
    ("LookUp", {}),
    ("LookUp", {}),  # past the -30° limit: fails
    ("LookDown", {}),
    ("RotateLeft", {"degrees": 45}),
    ("MoveBack", {"moveMagnitude": 0.5}),
    ("Teleport", {"horizon": 90}),  # beyond the 60° limit: fails
    ("OpenObject", {"objectId": "Fridge|+9.00|+9.00|+9.00"}),  # no such object: fails
    (
        "TeleportFull",
        {
            "position": {"x": -1.0, "y": 0.9, "z": -1.0},
            "rotation": 180,
            "horizon": 30,
            "standing": True,
        },
    ),
    ("MoveAhead", {}),
]


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Client]:
    client = _Client(tmp_path_factory.mktemp("home1"), scene="FloorPlan1", renderDepthImage=True)
    yield client
    client.stop()


def test_single_agent_matches_direct_controller(single: _Client) -> None:
    direct = SimController(scene="FloorPlan1_physics", width=W, height=H, renderDepthImage=True)
    first = single.controller.last_event
    assert first.metadata["lastAction"] == "Initialize"
    assert first.metadata["sceneName"] == "FloorPlan1_physics"
    assert len(first.events) == 1
    assert _pose(first.metadata) == _pose(direct.last_event.metadata)
    assert np.array_equal(first.frame, direct.last_event.frame)
    outcomes = []
    for i, (action, kwargs) in enumerate(SINGLE_ACTIONS):
        got = single.step(action, **kwargs)
        want = direct.step(action, **kwargs)
        _same_step(got, want, f"step {i} {action}{kwargs}")
        outcomes.append(got.metadata["lastActionSuccess"])
        assert got.depth_frame.min() > 0 and np.isfinite(got.depth_frame).all()
    failed = {i for i, ok in enumerate(outcomes) if not ok}
    assert {4, 8, 9} <= failed and len(failed) < len(outcomes), f"outcomes: {outcomes}"

    got = single.step("GetReachablePositions")
    want = direct.step("GetReachablePositions")
    assert got.metadata["lastActionSuccess"]
    assert got.metadata["actionReturn"] == want.metadata["actionReturn"]
    assert len(got.metadata["actionReturn"]) > 10


def test_single_agent_invalid_actions_raise_value_error(single: _Client) -> None:
    with pytest.raises(ValueError, match="Fly"):
        single.step("Fly")
    with pytest.raises(ValueError, match="moveMagnitude"):
        single.step("MoveAhead", moveMagnitude="far")
    with pytest.raises(ValueError, match="nonsense"):
        single.step("Pass", nonsense=1)
    ok = single.step("Pass")  # still serving after errors
    assert ok.metadata["lastActionSuccess"] and ok.frame.shape == (H, W, 3)


def test_multi_agent_masks_and_reset(tmp_path: Path) -> None:
    client = _Client(
        tmp_path,
        scene="FloorPlan1",
        renderDepthImage=True,
        renderInstanceSegmentation=True,
        agentCount=2,
    )
    try:
        init = dict(renderDepthImage=True, renderInstanceSegmentation=True, agentCount=2)
        direct = SimController(scene="FloorPlan1_physics", width=W, height=H, **init)
        ev = client.controller.last_event
        assert len(ev.events) == 2
        for action, agent in [("RotateRight", 1), ("MoveAhead", 0), ("LookDown", 1)]:
            got = client.step(action, agentId=agent)
            want = direct.step(action, agentId=agent)
            assert got.metadata["agentId"] == agent  # the active agent's metadata
            assert len(got.events) == 2
            for a in range(2):
                label = f"{action} by agent {agent}, view of agent {a}"
                _same_step(got.events[a], want.events[a], label)
        e0, e1 = got.events
        assert _pose(e0.metadata) != _pose(e1.metadata)
        assert e1.metadata["agent"]["cameraHorizon"] == 30.0
        assert e0.metadata["agent"]["cameraHorizon"] == 0.0

        seen = 0
        for a in range(2):
            g, w = got.events[a], want.events[a]
            assert np.array_equal(g.instance_segmentation_frame, w.instance_segmentation_frame)
            masks = dict(g.instance_masks)
            assert set(masks) == set(w.instance_masks), f"agent {a}: mask keys differ"
            for oid, m in masks.items():
                assert "|" in oid and m.dtype == bool and m.shape == (H, W)
                assert np.array_equal(m, w.instance_masks[oid]), f"agent {a}: mask {oid}"
            seen += len(masks)
        assert seen > 0, "no object visible to either agent: instance_masks untested"

        ev = client.controller.reset("FloorPlan201")
        want = direct.reset("FloorPlan201_physics")
        assert ev.metadata["sceneName"] == "FloorPlan201_physics"
        assert len(ev.events) == 2
        for a in range(2):
            assert _pose(ev.events[a].metadata) == _pose(want.events[a].metadata)
            got_ids = [o["objectId"] for o in ev.events[a].metadata["objects"]]
            assert got_ids == [o["objectId"] for o in want.events[a].metadata["objects"]]
        got = client.step("MoveAhead", agentId=1)
        _same_step(got.events[1], direct.step("MoveAhead", agentId=1).events[1], "after reset")
        with pytest.raises(ValueError, match="agentId"):
            client.step("Pass", agentId=5)
    finally:
        proc = client.controller.server.unity_proc
        client.stop()
    assert proc.poll() is not None, "thorgym-thor still running after controller.stop()"


def test_two_agents_teleport_object_and_make_agents_visible(tmp_path: Path) -> None:
    """FurnLift's set-up through the genuine client: agent 1 placed, the Television put on the floor."""
    init = dict(renderInstanceSegmentation=True, agentCount=2)
    client = _Client(tmp_path, scene="FloorPlan201", **init)
    try:
        direct = SimController(scene="FloorPlan201_physics", width=W, height=H, **init)
        tv = next(o for o in direct.last_event.metadata["objects"] if o["objectType"] == "Television")
        floor = {"objectId": tv["objectId"], "position": {"x": -1.0, "y": 0.33, "z": 0.5}}
        steps: list[tuple[str, dict[str, Any]]] = [
            ("TeleportFull", dict(position=dict(x=-1.0, y=0.9, z=0.0), rotation=dict(x=0, y=0, z=0),
                                  horizon=0, standing=True, agentId=1)),
            ("Teleport", dict(position=dict(x=-2.0, y=0.9, z=0.0), rotation=dict(x=0, y=90, z=0), agentId=0)),
            ("TeleportObject", dict(floor, position={"x": -0.9, "y": 0.33, "z": -0.75})),  # coffee table
            ("TeleportObject", dict(floor, objectId="Television|+9.99|+9.99|+9.99")),  # no such object
            ("TeleportObject", dict(floor, rotation=dict(x=0, y=0, z=0))),
            ("MoveAhead", dict(agentId=1)),  # z 0.25: in front of the Television
            ("MoveAhead", dict(agentId=1)),  # blocked by it
            ("LookDown", dict(agentId=1, degrees=60)),  # to see it at its feet
        ]  # fmt: skip
        outcomes, messages = [], []
        for action, kwargs in steps:
            got = client.step(action, **kwargs)
            want = direct.step(action, **kwargs)
            assert got.metadata["agentId"] == kwargs.get("agentId", 0)
            for a in range(2):
                _same_step(got.events[a], want.events[a], f"{action} {kwargs}, view of agent {a}")
                assert np.array_equal(
                    got.events[a].instance_segmentation_frame, want.events[a].instance_segmentation_frame
                )
            outcomes.append(got.metadata["lastActionSuccess"])
            messages.append(got.metadata["errorMessage"])
        assert outcomes == [True, True, False, False, True, True, False, True]
        assert "CoffeeTable|" in messages[2] and "is not the objectId on any object" in messages[3]
        assert messages[6].startswith(f"{tv['objectId']} is blocking Agent 1")
        e0, e1 = got.events
        assert e1.metadata["agent"]["position"]["z"] == 0.25
        for ev in (e0, e1):
            moved = next(o for o in ev.metadata["objects"] if o["objectId"] == tv["objectId"])
            assert moved["position"] == {"x": -1.0, "y": 0.33, "z": 0.5}
            assert moved["rotation"]["y"] == 0.0 and moved["parentReceptacles"] is None
        assert tv["objectId"] in dict(e1.instance_masks)  # agent 1 looks down at it
        assert next(o for o in e1.metadata["objects"] if o["objectId"] == tv["objectId"])["visible"]
        assert "agent1" in e0.color_to_object_id.values()  # agent 0 sees its partner ahead

        ev = client.controller.reset("FloorPlan201", makeAgentsVisible=False)
        want = direct.reset("FloorPlan201_physics", makeAgentsVisible=False)
        for kwargs in (dict(position=dict(x=-1.0, y=0.9, z=0.0), rotation=0, agentId=1),
                       dict(position=dict(x=-2.0, y=0.9, z=0.0), rotation=90, agentId=0)):  # fmt: skip
            got, want = client.step("Teleport", **kwargs), direct.step("Teleport", **kwargs)
        for a in range(2):
            _same_step(got.events[a], want.events[a], f"invisible agents, view of agent {a}")
            assert not {"agent0", "agent1"} & set(got.events[a].color_to_object_id.values())
    finally:
        client.stop()


# -- raw protocol ----------------------------------------------------------------------------
class RawServer:
    """thorgym-thor on two FIFOs we hold open read-write (so no open() here can block)."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.server_pipe, self.client_pipe = tmp / "server.pipe", tmp / "client.pipe"
        os.mkfifo(self.server_pipe)
        os.mkfifo(self.client_pipe)
        full_env = {
            **os.environ,
            "AI2THOR_FIFO_SERVER_PIPE_PATH": str(self.server_pipe),
            "AI2THOR_FIFO_CLIENT_PIPE_PATH": str(self.client_pipe),
            **(env or {}),
        }
        self.log = tmp / "stderr.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [_executable(), "-screen-width", str(W), "-screen-height", str(H), "-batchmode"],
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.rfd = os.open(self.server_pipe, os.O_RDWR)
        self.wfd: int | None = os.open(self.client_pipe, os.O_RDWR)
        self.buf = bytearray()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no reply from thorgym-thor in time\n{self.stderr()}")
            ready, _, _ = select.select([self.rfd], [], [], min(left, 0.2))
            if ready:
                self.buf += os.read(self.rfd, 1 << 20)
            elif self.proc.poll() is not None and not self.buf:
                raise EOFError(f"thorgym-thor exited with {self.proc.returncode}")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv(self, timeout: float = 60.0) -> tuple[dict[str, Any], dict[int, list[bytes]]]:
        deadline = time.monotonic() + timeout
        meta: dict[str, Any] | None = None
        files: dict[int, list[bytes]] = {}
        while True:
            ftype, length = HEADER.unpack(self._read(HEADER.size, deadline))
            if ftype == FieldType.END_OF_MESSAGE:
                assert meta is not None, "reply without METADATA"
                return meta, files
            body = self._read(length, deadline)
            if ftype == FieldType.METADATA:
                meta = msgpack.loads(body, raw=False, strict_map_key=False)
            else:
                files.setdefault(ftype, []).append(body)

    def send_raw(self, data: bytes) -> None:
        assert self.wfd is not None
        os.write(self.wfd, data)

    def send_action(self, action: dict[str, Any] | bytes) -> None:
        body = action if isinstance(action, bytes) else json.dumps(action).encode()
        self.send_raw(HEADER.pack(FieldType.ACTION, len(body)) + body + EOM)

    def close_client_pipe(self) -> None:
        if self.wfd is not None:
            os.close(self.wfd)
            self.wfd = None

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"thorgym-thor did not exit within {timeout}s\n{self.stderr()}")

    def close(self) -> None:
        self.close_client_pipe()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.rfd)


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawServer]:
    server = RawServer(tmp_path)
    yield server
    server.close()


def _error(meta: dict[str, Any]) -> tuple[str, str]:
    agent = meta["agents"][0]
    assert agent["lastActionSuccess"] is False, agent
    return agent["errorMessage"], agent["errorCode"]


def test_raw_first_message_scenes_resolution_and_clean_exit(raw: RawServer) -> None:
    meta, files = raw.recv()
    assert meta["sequenceId"] == 0 and meta["activeAgentId"] == 0 and not files
    agent = meta["agents"][0]
    assert (agent["screenWidth"], agent["screenHeight"]) == (W, H)
    assert agent["thirdPartyCameras"] == [] and "errorCode" in agent
    raw.send_action({"action": "GetScenesInBuild", "sequenceId": 1})
    meta, _ = raw.recv()
    assert meta["sequenceId"] == 1
    scenes = set(meta["agents"][0]["actionReturn"])
    assert {"FloorPlan1", "FloorPlan1_physics", "FloorPlan430_physics"} <= scenes
    raw.send_action({"action": "ChangeResolution", "x": 100, "y": 80, "sequenceId": 2})
    meta, _ = raw.recv()
    assert (meta["agents"][0]["screenWidth"], meta["agents"][0]["screenHeight"]) == (100, 80)
    raw.send_action({"action": "Reset", "sceneName": "FloorPlan999_physics", "sequenceId": 3})
    message, code = _error(raw.recv()[0])
    assert "FloorPlan999" in message and code == "InvalidArgument"
    raw.close_client_pipe()
    assert raw.wait() == 0
    assert "client closed the pipe" in raw.stderr()


def test_raw_malformed_messages_get_error_replies(raw: RawServer) -> None:
    raw.recv()
    raw.send_action(b"{not json")
    message, code = _error(raw.recv()[0])
    assert "JSON" in message and code == "InvalidAction"
    raw.send_action(b"[1, 2]")
    assert "JSON object" in _error(raw.recv()[0])[0]
    raw.send_action({"sequenceId": 7, "moveMagnitude": 1})
    meta, _ = raw.recv()
    assert "'action'" in _error(meta)[0] and meta["sequenceId"] == 7
    raw.send_raw(HEADER.pack(200, 3) + b"abc" + EOM)  # unknown field type, small body
    assert "unknown field type 200" in _error(raw.recv()[0])[0]
    raw.send_raw(EOM)  # empty message
    assert "no ACTION field" in _error(raw.recv()[0])[0]
    raw.send_action({"action": "GetScenesInBuild", "sequenceId": 9})  # still serving
    meta, _ = raw.recv()
    assert meta["agents"][0]["lastActionSuccess"] and meta["sequenceId"] == 9
    assert raw.proc.poll() is None


def test_raw_garbage_header_error_then_exit(raw: RawServer) -> None:
    raw.recv()
    raw.send_raw(b"hello, this is not a protocol header at all")
    message, _ = _error(raw.recv()[0])
    assert "bad header" in message
    assert raw.wait() == 1


def test_raw_truncated_message_times_out(tmp_path: Path) -> None:
    server = RawServer(tmp_path, env={"THORGYM_THOR_MESSAGE_TIMEOUT": "0.5"})
    try:
        server.recv()
        server.send_raw(HEADER.pack(FieldType.ACTION, 100) + b'{"action": ')
        message, _ = _error(server.recv(timeout=20)[0])
        assert "incomplete message" in message
        assert server.wait() == 1
    finally:
        server.close()


def test_raw_unknown_action_and_bad_arguments(raw: RawServer) -> None:
    raw.recv()
    raw.send_action({"action": "Fly", "sequenceId": 1})
    message, code = _error(raw.recv()[0])
    assert "Fly" in message and code == "InvalidAction"
    raw.send_action({"action": "MoveAhead", "moveMagnitude": "far", "sequenceId": 2})
    message, code = _error(raw.recv()[0])
    assert "moveMagnitude" in message and code == "InvalidArgument"
    raw.send_action({"action": "Pass", "sequenceId": 3})  # the world loads lazily
    meta, files = raw.recv()
    assert meta["agents"][0]["lastActionSuccess"] and meta["sequenceId"] == 3
    assert meta["agents"][0]["sceneName"] == "FloorPlan1"
    assert [len(b) for b in files[FieldType.RGB_IMAGE]] == [W * H * 3]
    raw.close_client_pipe()
    assert raw.wait() == 0


def test_without_pipe_environment_exits_with_usage() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI2THOR_FIFO_")}
    proc = subprocess.run([_executable()], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "AI2THOR_FIFO_SERVER_PIPE_PATH" in proc.stderr and proc.stdout == ""


def test_force_actions_through_the_genuine_client(single: _Client) -> None:
    """PushObject / PullObject / DirectionalPush (MuJoCo physics) through the client equal the
    direct Controller step for step, and a bad push fails the action without killing the server."""
    single.controller.reset("FloorPlan201", renderDepthImage=True)
    direct = SimController(scene="FloorPlan201_physics", width=W, height=H, renderDepthImage=True)
    box = next(o for o in direct.last_event.metadata["objects"] if o["objectType"] == "Box")["objectId"]
    sofa = next(o for o in direct.last_event.metadata["objects"] if o["objectType"] == "Sofa")["objectId"]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("TeleportObject", {"objectId": box, "position": {"x": -1.0, "y": 0.13, "z": 0.5}}),
        (
            "Teleport",
            {
                "position": {"x": -1.0, "y": 0.9, "z": -0.25},
                "rotation": {"x": 0, "y": 0, "z": 0},
                "horizon": 30,
            },
        ),
        ("PushObject", {"objectId": box, "moveMagnitude": 60.0}),
        ("DirectionalPush", {"objectId": box, "moveMagnitude": 40.0, "pushAngle": 90.0}),
        ("PullObject", {"objectId": box, "moveMagnitude": 30.0}),
        ("PushObject", {"objectId": sofa, "moveMagnitude": 30.0, "forceAction": True}),  # not moveable
        ("PushObject", {"objectId": box, "moveMagnitude": -1.0}),
        ("PushObject", {"objectId": box, "moveMagnitude": 1e9}),
        ("PushObject", {"objectId": "Box|+09.00|+00.00|+09.00", "moveMagnitude": 1.0}),
    ]
    start = next(o for o in direct.last_event.metadata["objects"] if o["objectId"] == box)["position"]
    oks = []
    for i, (action, kwargs) in enumerate(steps):
        got = single.step(action, **kwargs)
        want = direct.step(action, **kwargs)
        _same_step(got, want, f"step {i} {action}{kwargs}")
        oks.append(got.metadata["lastActionSuccess"])
    assert oks == [True] * 5 + [False] * 4
    end = next(o for o in single.controller.last_event.metadata["objects"] if o["objectId"] == box)[
        "position"
    ]
    assert end != start
    assert single.step("Pass").metadata["lastActionSuccess"]  # the server is still serving
