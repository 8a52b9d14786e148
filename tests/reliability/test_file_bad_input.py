"""Bad files (#16): corrupt, truncated, wrong-version, foreign and malicious checkpoints for every
checkpoint-loading agent path, and malformed episode sets, IQA question files and OK-VQA files.

Each must fail with a clear error that names the file (``thorgym eval`` exits with status 2 and
prints it), never a traceback from deep inside torch, SB3, gzip or an environment's reset. A
pickle that would run code when loaded must be refused, and the code must not have run. The
property-based parts (Hypothesis, fixed seed) cut valid files at any byte and feed the loaders
arbitrary JSON.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import pickle
import shlex
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from thorgym.cli import app
from thorgym.rundir import RunDir

runner = CliRunner()
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


class _RunsCode:
    """Unpickling this runs a shell command (touches a marker file): the classic malicious pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


# -- valid checkpoints of each kind, built in-process (no training) ------------------------------
def _ppo_payload() -> dict[str, Any]:
    from thorgym.agents.ppo import CKPT_FORMAT, PolicySpec
    from thorgym.agents.ppo.model import RecurrentActorCritic

    spec = PolicySpec(num_actions=6, num_targets=8, feature_dim=32, hidden=16)
    model = RecurrentActorCritic(spec)
    return {"format": CKPT_FORMAT, "spec": spec.to_dict(), "model": model.state_dict()}


def _iqa_payload() -> dict[str, Any]:
    from thorgym.agents.himn.trainer import build_policy

    return {"format": "thorgym-iqa-v1", "agent": "himn", "policy": build_policy("himn").state_dict(),
            "answerer": None, "detector": None, "steps": 0, "updates": 0, "log": "[]"}  # fmt: skip


def _tbone_file(tmp: Path) -> Path:
    from thorgym.agents.tbone.model import TBone
    from thorgym.agents.tbone.trainer import FurnitureTrainArgs, _state, model_config, save_checkpoint

    model = TBone(model_config("furnlift", "both", "marginal", 32, 16))
    args = FurnitureTrainArgs(task="furnlift", out=str(tmp))
    state = _state(0, 0, np.random.default_rng(0))
    return save_checkpoint(RunDir(tmp, ".pt"), tmp / "valid.pt", model, None, state, args)


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _reshaped(payload: dict[str, Any], key: str) -> dict[str, Any]:
    sd = dict(payload[key])
    name = next(iter(sd))
    sd[name] = torch.zeros(3, 3, 3)
    return {**payload, key: sd}


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid checkpoint per loader (the SB3 one is a CartPole model: foreign to ObjectNav)."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    tmp = tmp_path_factory.mktemp("valid")
    (tmp / "ppo.pt").write_bytes(_torch_bytes(_ppo_payload()))
    (tmp / "iqa.pt").write_bytes(_torch_bytes(_iqa_payload()))
    PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=16, batch_size=16, device="cpu").save(tmp / "sb3.zip")
    return {"ppo": tmp / "ppo.pt", "iqa": tmp / "iqa.pt", "sb3": tmp / "sb3.zip", "tbone": _tbone_file(tmp)}


# What each loader is, through the CLI (`thorgym eval ...`) and as a function.
EVAL_ARGS: dict[str, list[str]] = {
    "ppo": ["eval", "objectnav", "--agent", "ppo", "--episodes", "1"],
    "sb3": ["eval", "objectnav", "--agent", "ppo-ff", "--episodes", "1"],
    "savn": ["eval", "objectnav", "--agent", "savn", "--episodes", "1"],
    "iqa": ["eval", "iqa", "--agent", "himn", "--limit", "1", "--envs", "1"],
    "tbone": ["eval", "furnlift", "--episodes", "1", "--envs", "1"],
}
FORMAT_KEY = {"ppo": ("thorgym.ppo/2", "model"), "iqa": ("thorgym-iqa-v2", "policy"),
              "tbone": ("thorgym-tbone-v2", "model")}  # fmt: skip


def _load(kind: str, path: Path) -> object:
    """The loader behind ``thorgym eval`` for this kind of checkpoint."""
    if kind == "ppo":
        from thorgym.agents.ppo import load_policy

        return load_policy(path)
    if kind == "sb3":
        from thorgym.agents.sb3_ppo import load_checkpoint

        return load_checkpoint(path)
    if kind == "iqa":
        from thorgym.agents.himn.trainer import load_checkpoint

        return load_checkpoint(path)
    if kind == "tbone":
        from thorgym.agents.tbone.trainer import load_model

        return load_model(path)
    from thorgym.agents.savn.checkpoint import load_savn_checkpoint

    return load_savn_checkpoint(path)


def _bad_files(kind: str, valid: dict[str, Path], tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a word the error must contain besides the file's name)."""
    ext = ".zip" if kind == "sb3" else ".pt"
    marker = tmp / "pwned"
    good = valid.get(kind)
    raw = good.read_bytes() if good else b""
    cases: dict[str, tuple[bytes | Path, str]] = {
        "empty file": (b"", ""),
        "random bytes": (np.random.default_rng(0).bytes(4096), ""),
        "text file": (b"this is not a checkpoint\n", ""),
        "JSON file": (b'{"format": "thorgym.ppo/1"}', ""),
        "malicious pickle": (_torch_bytes(_RunsCode(marker)), "could run code" if ext == ".pt" else ""),
        "plain tensor": (_torch_bytes(torch.zeros(3)), ""),
        "directory without checkpoints": (tmp / "empty_dir", "no checkpoint"),
        "missing file": (tmp / f"absent{ext}", "does not exist"),
    }
    if good is not None:
        cases |= {
            "cut to 10 bytes": (raw[:10], ""),
            "cut in half": (raw[: len(raw) // 2], ""),
            "last byte missing": (raw[:-1], ""),
        }
    foreign = {"ppo": "tbone", "tbone": "iqa", "iqa": "ppo", "savn": "ppo", "sb3": "ppo"}[kind]
    cases["another agent's checkpoint"] = (valid[foreign].read_bytes(), "")
    if kind in FORMAT_KEY:
        payload = torch.load(good, weights_only=True)
        newer, weights = FORMAT_KEY[kind]
        cases["newer format version"] = (
            _torch_bytes({**payload, "format": newer}),
            "another thorgym version",
        )
        cases["weights missing"] = (
            _torch_bytes({k: v for k, v in payload.items() if k != weights}),
            "incomplete",
        )
        cases["a tensor of the wrong shape"] = (_torch_bytes(_reshaped(payload, weights)), "incompatible")
        cases["code hidden inside a valid dict"] = (
            _torch_bytes({**payload, "x": _RunsCode(marker)}),
            "run code",
        )
    if kind == "sb3":
        cases |= _bad_sb3_archives(raw, marker)
    out: dict[str, tuple[Path, str]] = {}
    (tmp / "empty_dir").mkdir(exist_ok=True)
    for i, (name, (content, word)) in enumerate(cases.items()):
        if isinstance(content, Path):
            out[name] = (content, word)
        else:
            path = tmp / f"case{i}{ext}"
            path.write_bytes(content)
            out[name] = (path, word)
    return out


def _rezip(raw: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    change(entries)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    return buf.getvalue()


def _bad_sb3_archives(raw: bytes, marker: Path) -> dict[str, tuple[bytes, str]]:
    def evil(entries: dict[str, bytes]) -> None:
        data = json.loads(entries["data"])
        data["lr_schedule"] = {":serialized:": base64.b64encode(pickle.dumps(_RunsCode(marker))).decode()}
        entries["data"] = json.dumps(data).encode()

    def no_policy(entries: dict[str, bytes]) -> None:
        del entries["policy.pth"]

    def bad_data(entries: dict[str, bytes]) -> None:
        entries["data"] = b"{not json"

    def bad_b64(entries: dict[str, bytes]) -> None:
        data = json.loads(entries["data"])
        data["observation_space"] = {":serialized:": "!!!not base64!!!"}
        entries["data"] = json.dumps(data).encode()

    return {
        "SB3 archive with a code-running pickle": (_rezip(raw, evil), "could run code"),
        "SB3 archive without policy.pth": (_rezip(raw, no_policy), "lacks"),
        "SB3 archive with corrupt data": (_rezip(raw, bad_data), "corrupt"),
        "SB3 archive with an undecodable entry": (_rezip(raw, bad_b64), "corrupt"),
    }


@pytest.mark.parametrize("kind", sorted(EVAL_ARGS))
def test_bad_checkpoints_give_a_clear_error_naming_the_file(
    kind: str, valid: dict[str, Path], tmp_path: Path
) -> None:
    cases = _bad_files(kind, valid, tmp_path)
    outcomes = {}
    for name, (path, word) in cases.items():
        res = runner.invoke(app, [*EVAL_ARGS[kind], "--checkpoint", str(path), "--out", str(tmp_path / "o")])
        out = res.output
        assert res.exit_code == 2, f"{kind}, {name}: exit {res.exit_code}\n{out}\n{res.exception!r}"
        assert "Traceback" not in out, f"{kind}, {name}:\n{out}"
        assert path.name in out, f"{kind}, {name}: the error does not name the file:\n{out}"
        assert word.lower() in out.lower(), f"{kind}, {name}: expected {word!r} in\n{out}"
        if "run code" not in word:  # damage is not reported as an attack, nor the reverse
            assert "could run code" not in out, f"{kind}, {name}:\n{out}"
        outcomes[name] = out.strip().splitlines()[-1][:160]
    assert not (tmp_path / "pwned").exists(), f"{kind}: a malicious pickle ran code"
    assert len(outcomes) >= 9


def test_a_foreign_sb3_model_is_refused_before_evaluation(valid: dict[str, Path], tmp_path: Path) -> None:
    """A genuine SB3 zip trained on another environment (CartPole) is not an ObjectNav policy."""
    res = runner.invoke(app, [*EVAL_ARGS["sb3"], "--checkpoint", str(valid["sb3"]), "--out", str(tmp_path)])
    assert res.exit_code == 2, f"{res.output}\n{res.exception!r}"
    assert valid["sb3"].name in res.output and "another environment" in res.output


def test_valid_checkpoints_still_load(valid: dict[str, Path]) -> None:
    for kind in ("ppo", "iqa", "tbone"):
        assert _load(kind, valid[kind]) is not None
    with pytest.raises(ValueError, match="another environment"):  # passed every check but the last
        _load("sb3", valid["sb3"])


@settings(derandomize=True, max_examples=30, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(kind=st.sampled_from(["ppo", "iqa", "tbone", "sb3"]), cut=st.floats(0, 1, exclude_max=True),
       flip=st.none() | st.floats(0, 1, exclude_max=True))  # fmt: skip
def test_any_truncation_or_flipped_byte_loads_or_fails_naming_the_file(
    valid: dict[str, Path], tmp_path: Path, kind: str, cut: float, flip: float | None
) -> None:
    raw = bytearray(valid[kind].read_bytes())
    if flip is None:
        raw = raw[: int(cut * len(raw))]
    else:
        raw[int(flip * len(raw))] ^= 0xFF
    path = tmp_path / f"damaged{valid[kind].suffix}"
    path.write_bytes(bytes(raw))
    try:
        _load(kind, path)  # a flipped byte inside tensor data can go unnoticed: that is allowed
    except ValueError as e:
        assert str(path) in str(e), e


# -- episode sets ---------------------------------------------------------------------------------
def _gz(obj: Any) -> bytes:
    return gzip.compress(json.dumps(obj).encode(), mtime=0)


GOOD_OBJECTNAV = {"scene": "FloorPlan401", "target": "Towel", "position": {"x": 0.0, "y": 0.9, "z": 0.0}}
GOOD_FURN = {"scene": "FloorPlan201", "tv": [0.0, 0.0, 0], "agents": [[1.0, 1.0, 0.0], [1.5, 1.0, 0.0]]}

BAD_EPISODE_FILES: dict[str, bytes] = {
    "empty": b"",
    "random bytes": np.random.default_rng(1).bytes(512),
    "gzip cut short": _gz({"episodes": [GOOD_OBJECTNAV] * 50})[:40],
    "not JSON inside the gzip": gzip.compress(b"{episodes: [", mtime=0),
    "latin-1 text": gzip.compress('{"episodes": ["\xe9"]}'.encode("latin-1"), mtime=0),
    "a number": _gz(7),
    "object without episodes": _gz({"eps": []}),
    "episodes not a list": _gz({"episodes": {"a": 1}}),
    "an episode that is a string": _gz({"episodes": ["FloorPlan1"]}),
    "an episode without a scene": _gz({"episodes": [{"target": "Towel", "position": [0, 0, 0]}]}),
    "an episode without a position": _gz({"episodes": [{"scene": "FloorPlan401", "target": "Towel"}]}),
    "an unknown scene": _gz({"episodes": [{**GOOD_OBJECTNAV, "scene": "FloorPlan999"}]}),
    "an unknown target": _gz({"episodes": [{**GOOD_OBJECTNAV, "target": "Unicorn"}]}),
    "a position that is a string": _gz({"episodes": [{**GOOD_OBJECTNAV, "position": "here"}]}),
}


def test_malformed_objectnav_episode_files_fail_naming_the_file(tmp_path: Path) -> None:
    for i, (name, content) in enumerate(BAD_EPISODE_FILES.items()):
        path = tmp_path / f"episodes{i}.json.gz"
        path.write_bytes(content)
        res = runner.invoke(app, ["eval", "objectnav", "--agent", "random", "--episode-file", str(path),
                                  "--episodes", "1", "--out", str(tmp_path / "o")])  # fmt: skip
        assert res.exit_code == 2, f"{name}: exit {res.exit_code}\n{res.output}\n{res.exception!r}"
        assert path.name in res.output and "Traceback" not in res.output, f"{name}:\n{res.output}"


def test_malformed_furniture_episode_files_fail_naming_the_file(tmp_path: Path) -> None:
    from thorgym.datasets.furniture import load_episodes

    cases = {**BAD_EPISODE_FILES, "a kitchen": _gz([{**GOOD_FURN, "scene": "FloorPlan1"}]),
             "one agent": _gz([{**GOOD_FURN, "agents": [[1.0, 1.0, 0.0]]}]),
             "tv of two numbers": _gz([{**GOOD_FURN, "tv": [0.0, 0.0]}])}  # fmt: skip
    for i, (name, content) in enumerate(cases.items()):
        path = tmp_path / f"furn{i}.json.gz"
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_episodes("furnlift", path)
        assert str(path) in str(err.value), f"{name}: {err.value}"
    path = tmp_path / "good.json.gz"
    path.write_bytes(_gz({"episodes": [GOOD_FURN]}))
    assert load_episodes("furnlift", path) == [GOOD_FURN]


@settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(data=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                         lambda c: st.lists(c, max_size=3) | st.dictionaries(
                             st.sampled_from(["episodes", "scene", "target", "position", "x", "z", "tv",
                                              "agents", "rotation", "l_opt"]), c, max_size=4),
                         max_leaves=10))  # fmt: skip
def test_any_json_episode_file_loads_or_fails_naming_the_file(tmp_path: Path, data: Any) -> None:
    from thorgym.datasets import furniture, objectnav

    path = tmp_path / "any.json"
    path.write_text(json.dumps(data))
    for load in (lambda p: objectnav.load_episodes(p), lambda p: furniture.load_episodes("furnmove", p)):
        try:
            eps = load(path)
        except ValueError as e:
            assert str(path) in str(e), e
        else:
            assert isinstance(eps, list) and all(isinstance(e, dict) for e in eps)


# -- IQA question files -----------------------------------------------------------------------
_CELL = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6) | st.integers(-5, 40).map(str)
IQA_HEADER = "question_type,scene_number,seed,question,answer,object_id,container_id"
BAD_QUESTION_FILES: dict[str, bytes] = {
    "binary": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "empty": b"",
    "wrong header": b"type,scene\nexistence,1\n",
    "a row too short": f"{IQA_HEADER}\nexistence,1,0\n".encode(),
    "a row too long": f"{IQA_HEADER}\nexistence,1,0,q,1,3,-1,extra\n".encode(),
    "not a number": f"{IQA_HEADER}\nexistence,one,0,q,1,3,-1\n".encode(),
    "unknown question type": f"{IQA_HEADER}\nwhy,1,0,q,1,3,-1\n".encode(),
    "a bathroom scene": f"{IQA_HEADER}\nexistence,401,0,q,1,3,-1\n".encode(),
    "answer out of range": f"{IQA_HEADER}\nexistence,1,0,q,5,3,-1\n".encode(),
    "object id out of range": f"{IQA_HEADER}\nexistence,1,0,q,1,999,-1\n".encode(),
}


def test_malformed_iqa_question_files_fail_naming_the_file(tmp_path: Path) -> None:
    for i, (name, content) in enumerate(BAD_QUESTION_FILES.items()):
        path = tmp_path / f"questions{i}.csv"
        path.write_bytes(content)
        res = runner.invoke(app, ["eval", "iqa", "--agent", "random", "--questions", str(path),
                                  "--out", str(tmp_path / "o")])  # fmt: skip
        assert res.exit_code == 2, f"{name}: exit {res.exit_code}\n{res.output}\n{res.exception!r}"
        assert path.name in res.output and "Traceback" not in res.output, f"{name}:\n{res.output}"


@settings(derandomize=True, max_examples=80, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(rows=st.lists(st.lists(_CELL, min_size=5, max_size=8), max_size=4))
def test_any_question_csv_reads_or_fails_naming_the_line(tmp_path: Path, rows: list[list[str]]) -> None:
    import csv

    from thorgym.tasks.iqa import read_questions

    path = tmp_path / "q.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(IQA_HEADER.split(","))
        w.writerows(rows)
    try:
        qs = read_questions(str(path))
    except ValueError as e:
        assert str(e).startswith(f"{path}:"), e
    else:
        assert len(qs) == len(rows)


# -- OK-VQA question and annotation files ----------------------------------------------------------
_OKVQA_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["questions", "annotations", "question_id", "image_id", "question", "answers",
                         "answer", "question_type", "answer_type", "data_subtype"]), c, max_size=5),
    max_leaves=14,
)  # fmt: skip


@settings(derandomize=True, max_examples=80, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(questions=_OKVQA_JSON, annotations=_OKVQA_JSON)
def test_any_okvqa_files_score_or_fail_naming_the_file(
    tmp_path: Path, questions: Any, annotations: Any
) -> None:
    from thorgym.eval.okvqa import evaluate

    qp, ap = tmp_path / "OpenEnded_questions.json", tmp_path / "mscoco_annotations.json"
    qp.write_text(json.dumps(questions))
    ap.write_text(json.dumps(annotations))
    try:
        evaluate(str(qp), str(ap), {})
    except ValueError as e:
        assert str(qp) in str(e) or str(ap) in str(e), e


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00", b'{"questions": [', b"[]"])
def test_truncated_or_binary_okvqa_files_fail_naming_the_file(tmp_path: Path, content: bytes) -> None:
    from thorgym.eval.okvqa import evaluate

    qp = tmp_path / "questions.json"
    qp.write_bytes(content)
    ap = tmp_path / "annotations.json"
    ap.write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="questions.json"):
        evaluate(str(qp), str(ap), {})
