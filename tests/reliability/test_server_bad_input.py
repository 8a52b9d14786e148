"""Bad input at ``thorgym-thor`` (#16): malformed, truncated and giant protocol messages, clients
that vanish mid-message, and bad actions through the genuine ai2thor client.

The server is started as the client starts it (pipe paths in the environment, Unity flags on the
command line). Every case must end in an error reply (and the server keeps serving), or an error
reply and an exit with status 1 when the byte stream can no longer be trusted, or a clean exit
when the client is gone. Every wait has a deadline: a hang fails the test. The server must never
start a child process, and exits are reaped (no zombie). The in-process part feeds the message
handler random bytes and random JSON (Hypothesis, fixed seed).
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thorgym.sim.controller import ACTION_ARGS
from thorgym.sim.fifo_server import (
    MAX_FIELD_BYTES,
    MAX_MESSAGE_BYTES,
    FieldType,
    ThorServer,
    find_executable,
)

HEADER = struct.Struct("!BI")
EOM = HEADER.pack(FieldType.END_OF_MESSAGE, 0)
W = H = 48


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


class RawServer:
    """thorgym-thor on two FIFOs that the test holds open read-write (no open() can block)."""

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
                [find_executable(), "-screen-width", str(W), "-screen-height", str(H)],
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.rfd: int | None = os.open(self.server_pipe, os.O_RDWR)
        self.wfd: int | None = os.open(self.client_pipe, os.O_RDWR)
        self.buf = bytearray()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def _read(self, n: int, deadline: float) -> bytes:
        assert self.rfd is not None
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no reply from thorgym-thor in time\n{self.stderr()}")
            if select.select([self.rfd], [], [], min(left, 0.2))[0]:
                self.buf += os.read(self.rfd, 1 << 20)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next reply's metadata (image fields are read and dropped)."""
        deadline = time.monotonic() + timeout
        meta = None
        while True:
            ftype, length = HEADER.unpack(self._read(HEADER.size, deadline))
            if ftype == FieldType.END_OF_MESSAGE:
                assert meta is not None, "reply without METADATA"
                return meta
            body = self._read(length, deadline)
            if ftype == FieldType.METADATA:
                meta = msgpack.loads(body, raw=False, strict_map_key=False)

    def send(self, data: bytes) -> None:
        assert self.wfd is not None
        view = memoryview(data)
        while view:  # a pipe takes 64 KiB at a time: interleave with draining replies
            select.select([], [self.wfd], [], 5.0)
            try:
                view = view[os.write(self.wfd, view[: 1 << 16]) :]
            except BlockingIOError:
                pass

    def send_action(self, body: dict[str, Any] | bytes) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send(HEADER.pack(FieldType.ACTION, len(raw)) + raw + EOM)

    def close_writer(self) -> None:
        if self.wfd is not None:
            os.close(self.wfd)
            self.wfd = None

    def close_reader(self) -> None:
        if self.rfd is not None:
            os.close(self.rfd)
            self.rfd = None

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"thorgym-thor did not exit within {timeout}s\n{self.stderr()}")

    def close(self) -> None:
        self.close_writer()
        self.close_reader()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawServer]:
    server = RawServer(tmp_path)
    yield server
    server.close()


def _failed(meta: dict[str, Any]) -> str:
    agent = meta["agents"][0]
    assert agent["lastActionSuccess"] is False, agent
    assert agent["errorCode"], agent
    return agent["errorMessage"]


def _field(ftype: int, body: bytes) -> bytes:
    return HEADER.pack(ftype, len(body)) + body


# Each: (what is sent, a word the error message must contain). The server answers and carries on.
RECOVERABLE: list[tuple[str, bytes, str]] = [
    ("not JSON", _field(FieldType.ACTION, b"{not json") + EOM, "JSON"),
    ("msgpack body", _field(FieldType.ACTION, msgpack.packb({"action": "Pass"})) + EOM, "JSON"),
    ("not UTF-8", _field(FieldType.ACTION, b"\xff\xfe\xfd") + EOM, "JSON"),
    ("empty body", _field(FieldType.ACTION, b"") + EOM, "JSON"),
    ("JSON array", _field(FieldType.ACTION, b"[1, 2]") + EOM, "JSON object"),
    ("JSON string", _field(FieldType.ACTION, b'"MoveAhead"') + EOM, "JSON object"),
    ("nested 100k deep", _field(FieldType.ACTION, b"[" * 100_000) + EOM, "nested too deeply"),
    ("no action name", _field(FieldType.ACTION, b'{"moveMagnitude": 1}') + EOM, "'action'"),
    ("action name a number", _field(FieldType.ACTION, b'{"action": 7}') + EOM, "'action'"),
    ("unknown action", _field(FieldType.ACTION, b'{"action": "Fly"}') + EOM, "Fly"),
    (
        "1 MB action name",
        _field(FieldType.ACTION, json.dumps({"action": "A" * 1_000_000}).encode()) + EOM,
        "characters in all",
    ),
    ("unknown argument", _field(FieldType.ACTION, b'{"action": "Pass", "x": 1}') + EOM, "'x'"),
    (
        "NaN argument",
        _field(FieldType.ACTION, b'{"action": "MoveAhead", "moveMagnitude": NaN}') + EOM,
        "moveMagnitude",
    ),
    ("empty message", EOM, "no ACTION field"),
    ("two ACTION fields", _field(FieldType.ACTION, b'{"action": "Pass"}') * 2 + EOM, "2 ACTION"),
    (
        "unknown field type",
        _field(200, b"abc") + _field(FieldType.ACTION, b"{}") + EOM,
        "unknown field type 200",
    ),
    ("server-side field", _field(FieldType.METADATA, b"\x80") + EOM, "unexpected field"),
    (
        "ChangeResolution 10^9",
        _field(FieldType.ACTION, b'{"action": "ChangeResolution", "x": 1000000000}') + EOM,
        "between 32",
    ),
    (
        "agentCount 10^5",
        _field(FieldType.ACTION, b'{"action": "Initialize", "agentCount": 100000}') + EOM,
        "agentCount",
    ),
    ("Reset to a list", _field(FieldType.ACTION, b'{"action": "Reset", "sceneName": ["x"]}') + EOM, "scene"),
    (
        "unsupported render pass",
        _field(FieldType.ACTION, b'{"action": "Initialize", "renderNormalsImage": true}') + EOM,
        "renderNormalsImage",
    ),
]


def test_recoverable_malformed_messages_get_error_replies_and_server_carries_on(
    raw: RawServer,
) -> None:
    raw.recv()  # the unprompted first message
    for label, data, word in RECOVERABLE:
        raw.send(data)
        message = _failed(raw.recv())
        assert word in message, f"{label}: {message[:300]!r}"
        assert len(message) < 3000, f"{label}: error message of {len(message)} characters"
    # sequenceIds msgpack cannot encode are replaced (they used to crash the reply encoder)
    for seq in (2**70, -(2**70), 1.5, "7", None):
        raw.send_action({"action": "GetScenesInBuild", "sequenceId": seq})
        meta = raw.recv()
        assert meta["agents"][0]["lastActionSuccess"] and isinstance(meta["sequenceId"], int)
    raw.send_action({"action": "Pass", "sequenceId": 99})  # the world still loads and steps
    meta = raw.recv()
    assert meta["agents"][0]["lastActionSuccess"] and meta["sequenceId"] == 99
    assert raw.proc.poll() is None and _children(raw.proc.pid) == []
    raw.close_writer()
    assert raw.wait() == 0
    assert not Path(f"/proc/{raw.proc.pid}").exists()  # reaped: no zombie


# Each: (what is sent, then whether the client closes its pipe, a word of the error reply).
# The stream cannot be re-synchronised: error reply, then exit status 1.
FATAL: dict[str, tuple[bytes, bool, str]] = {
    "header claims 2 GiB": (HEADER.pack(FieldType.ACTION, 2**31) + b"{", False, "bad header"),
    "header claims 4 GiB - 1": (HEADER.pack(FieldType.ACTION, 2**32 - 1), False, "bad header"),
    "field one byte over the limit": (
        HEADER.pack(FieldType.RGB_IMAGE, MAX_FIELD_BYTES + 1),
        False,
        "bad header",
    ),
    "fields add up past the limit": (
        _field(150, bytes(MAX_MESSAGE_BYTES // 2)) * 2 + HEADER.pack(150, 10),
        False,
        "message too long",
    ),
    "text where a header belongs": (b"hello, this is not a protocol header", False, "bad header"),
    "half a header, pipe closed": (b"\x02\x00", True, "closed in the middle"),
    "header only, pipe closed": (HEADER.pack(FieldType.ACTION, 30), True, "closed in the middle"),
    "half a body, pipe closed": (
        HEADER.pack(FieldType.ACTION, 30) + b'{"action": "Pa',
        True,
        "closed in the middle",
    ),
    "no END_OF_MESSAGE, pipe closed": (
        _field(FieldType.ACTION, b'{"action": "Pass"}'),
        True,
        "closed in the middle",
    ),
    "length says 5, body is longer": (
        _field(FieldType.ACTION, b'{"action": "Pass"}')[:1]
        + struct.pack("!I", 5)
        + b'{"action": "Pass"}'
        + EOM,
        False,
        "bad header",
    ),
}


@pytest.mark.parametrize("case", sorted(FATAL))
def test_corrupt_or_truncated_stream_gets_error_reply_then_exit(tmp_path: Path, case: str) -> None:
    data, close, word = FATAL[case]
    server = RawServer(tmp_path, env={"THORGYM_THOR_MESSAGE_TIMEOUT": "2"})
    try:
        server.recv()
        server.send(data)
        if close:
            server.close_writer()
        message = _failed(server.recv(timeout=30))
        assert word in message, f"{case}: {message!r}"
        assert server.wait() == 1, server.stderr()
        assert "cannot be trusted" in server.stderr()
    finally:
        server.close()


@pytest.mark.parametrize("stall", ["half a header", "half a body"])
def test_stalled_message_times_out(tmp_path: Path, stall: str) -> None:
    """A client that writes part of a message and then neither finishes nor closes."""
    server = RawServer(tmp_path, env={"THORGYM_THOR_MESSAGE_TIMEOUT": "0.5"})
    try:
        server.recv()
        t0 = time.monotonic()
        server.send(b"\x02\x00" if stall == "half a header" else HEADER.pack(FieldType.ACTION, 99) + b"{")
        assert "incomplete message" in _failed(server.recv(timeout=20))
        assert server.wait() == 1
        assert time.monotonic() - t0 < 15
    finally:
        server.close()


def test_client_that_vanishes_mid_message_leaves_no_process(tmp_path: Path) -> None:
    """Both pipes closed after half a message: nobody to answer, the server just exits."""
    server = RawServer(tmp_path)
    try:
        server.recv()
        server.send(HEADER.pack(FieldType.ACTION, 50) + b'{"act')
        server.close_writer()
        server.close_reader()
        assert server.wait() in (0, 1)
        assert "Traceback" not in server.stderr()
    finally:
        server.close()


def test_sigterm_exits_at_once_even_before_the_client_opens_its_pipe(tmp_path: Path) -> None:
    server_pipe, client_pipe = tmp_path / "s.pipe", tmp_path / "c.pipe"
    os.mkfifo(server_pipe)
    os.mkfifo(client_pipe)
    env = {**os.environ, "AI2THOR_FIFO_SERVER_PIPE_PATH": str(server_pipe),
           "AI2THOR_FIFO_CLIENT_PIPE_PATH": str(client_pipe)}  # fmt: skip
    proc = subprocess.Popen([find_executable()], env=env, stderr=subprocess.PIPE)
    time.sleep(1.0)  # blocked opening the reply pipe that nobody reads
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("thorgym-thor ignored SIGTERM while waiting for the client")
    assert proc.returncode == 0 and b"Traceback" not in err


@pytest.mark.parametrize(
    "env, word",
    [
        ({"THORGYM_THOR_MESSAGE_TIMEOUT": "soon"}, "THORGYM_THOR_MESSAGE_TIMEOUT"),
        ({"THORGYM_THOR_MESSAGE_TIMEOUT": "nan"}, "THORGYM_THOR_MESSAGE_TIMEOUT"),
        ({"THORGYM_THOR_MESSAGE_TIMEOUT": "-1"}, "THORGYM_THOR_MESSAGE_TIMEOUT"),
        ({"AI2THOR_FIFO_SERVER_PIPE_PATH": "/"}, "is not a FIFO"),
        ({"AI2THOR_FIFO_CLIENT_PIPE_PATH": "/nonexistent/pipe"}, "does not exist"),
        ({"AI2THOR_SERVER_TYPE": "WSGI"}, "only FIFO"),
    ],
)
def test_bad_start_environment_exits_2_with_the_reason(
    tmp_path: Path, env: dict[str, str], word: str
) -> None:
    for name in ("s.pipe", "c.pipe"):
        os.mkfifo(tmp_path / name)
    full = {**os.environ, "AI2THOR_FIFO_SERVER_PIPE_PATH": str(tmp_path / "s.pipe"),
            "AI2THOR_FIFO_CLIENT_PIPE_PATH": str(tmp_path / "c.pipe"), **env}  # fmt: skip
    done = subprocess.run([find_executable()], env=full, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and word in done.stderr, done.stderr


# -- in process: any bytes, any JSON ------------------------------------------------------------
def _reply_meta(reply: bytes) -> dict[str, Any]:
    ftype, length = HEADER.unpack(reply[: HEADER.size])
    assert ftype == FieldType.METADATA
    return msgpack.loads(reply[HEADER.size : HEADER.size + length], raw=False, strict_map_key=False)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_NAMES = st.sampled_from(sorted(set(ACTION_ARGS) - {"ChangeResolution"}) + ["Reset", "Initialize", "Fly", ""])
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the module server is meant to persist
_ARGS = st.sampled_from(sorted({a for args in ACTION_ARGS.values() for a in args} | {"sceneName", "x"}))


@pytest.fixture(scope="module")
def server() -> ThorServer:
    return ThorServer(width=W, height=H)


@settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(body=st.binary(max_size=64) | _JSON.map(lambda v: json.dumps(v).encode()))
def test_any_action_body_gets_a_reply(server: ThorServer, body: bytes) -> None:
    meta = _reply_meta(server.handle([(FieldType.ACTION, body)]))
    assert isinstance(meta["sequenceId"], int) and len(meta["agents"]) >= 1


@settings(derandomize=True, max_examples=120, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(name=_NAMES, args=st.dictionaries(_ARGS, _JSON, max_size=3), seq=_JSON)
def test_any_action_with_any_arguments_succeeds_or_fails_with_a_message(
    server: ThorServer, name: str, args: dict[str, Any], seq: Any
) -> None:
    if name == "Initialize":
        args = {k: v for k, v in args.items() if k not in ("agentCount",)}  # keep worlds small
    body = json.dumps({"action": name, "sequenceId": seq, **args}).encode()
    meta = _reply_meta(server.handle([(FieldType.ACTION, body)]))
    agent = meta["agents"][0]
    assert agent["lastActionSuccess"] or agent["errorMessage"], (name, args)
    assert "internal error" not in agent["errorMessage"], (name, args, agent["errorMessage"])


# -- the genuine client ---------------------------------------------------------------------------
BAD = [math.nan, math.inf, 1e308, -1, 0, 10**20, "x", None, [], {}, True]


def test_genuine_client_bad_arguments_raise_value_error_or_fail(tmp_path: Path) -> None:
    """Every action × every argument × malformed values through ai2thor's Controller."""
    from ai2thor.controller import Controller

    saved = {k: os.environ.get(k) for k in ("HOME", "CUDA_VISIBLE_DEVICES")}
    os.environ["HOME"] = str(tmp_path)  # the client writes its log there
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        c = Controller(local_executable_path=find_executable(), x_display=":0", scene="FloorPlan1",
                       width=W, height=H, server_timeout=60.0, server_start_timeout=60.0)  # fmt: skip
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    proc = c.server.unity_proc
    counts = {"ValueError": 0, "failed": 0, "succeeded": 0}
    try:
        for action in sorted(a for a in ACTION_ARGS if ACTION_ARGS[a] and a != "ChangeResolution"):
            for arg in ACTION_ARGS[action]:
                for v in BAD:
                    try:
                        ev = c.step(action, **{arg: v})
                    except ValueError as e:
                        assert str(e), (action, arg, v)
                        counts["ValueError"] += 1
                        continue
                    ok = ev.metadata["lastActionSuccess"]
                    assert ok or ev.metadata["errorMessage"], (action, arg, v)
                    if isinstance(v, float) and not math.isfinite(v):
                        assert not ok, f"{action}({arg}={v!r}) succeeded through the client"
                    counts["succeeded" if ok else "failed"] += 1
                    if ok and action != "Pass":
                        c.reset("FloorPlan1")
        with pytest.raises(TypeError):  # refused by the client before anything is sent
            c.step("MoveAhead", moveMagnitude=object())
        assert c.step("Pass").metadata["lastActionSuccess"]  # still serving
        assert _children(proc.pid) == []
    finally:
        c.stop()
    proc.wait(timeout=15)  # stop() ends it (the client kills its Unity process): no orphan left
    assert counts["ValueError"] > 0 and counts["failed"] + counts["succeeded"] > 0, counts
    print(f"genuine client sweep: {counts}", file=sys.stderr)
