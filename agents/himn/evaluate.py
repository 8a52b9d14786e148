"""``thorgym eval iqa``: HIMN, the flat agent and the random agent on held-out IQA questions.

Sub-environment i of the vector env plays questions i, i + N, i + 2N, … of the split in order, so
the first K questions (K a multiple of N) are played exactly once whatever N is. Writes
``OUT/metrics.json`` (accuracy per question type, episode length, invalid-action rate, beside the
most-likely-answer figures), ``OUT/episodes.jsonl`` and, with ``video``, ``OUT/episode_<k>.mp4``
(the view with the semantic map beside it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thorgym.atomic import atomic_path, write_json_atomic, write_text_atomic
from thorgym.tasks import iqa

from .driver import IQADriver
from .models import Answerer
from .trainer import build_policy, load_checkpoint, make_venv

EVAL_AGENTS = ("himn", "ppo", "random")


class _Random(torch.nn.Module):
    """Uniform over IQA's 11 primitive actions."""

    hidden = 1

    def forward(self, rgb, question, horizon, h, mask):  # noqa: D401 - the policy signature
        return torch.zeros(mask.shape), torch.zeros(mask.shape[0]), h


@dataclass(frozen=True)
class IQAEvalArgs:
    """Arguments of `thorgym eval iqa` (those of :func:`evaluate_iqa`)."""

    agent: str
    checkpoint: str | Path | None = None
    split: str = "unseen"
    questions: str | None = None
    limit: int | None = None
    per_type: int | None = None
    envs: int = 16
    size: int = 64
    seed: int = 0
    out: str | Path = "runs/iqa_eval"
    video: int = 0
    detector: str | None = None
    greedy: bool = False


def run_iqa_eval(args: IQAEvalArgs) -> dict[str, Any]:
    """:func:`evaluate_iqa` of typed arguments (the registry's evaluator of the IQA agents)."""
    return evaluate_iqa(**asdict(args))


def evaluate_iqa(
    *,
    agent: str,
    checkpoint: str | Path | None,
    split: str = "unseen",
    questions: str | None = None,
    limit: int | None = None,
    per_type: int | None = None,
    envs: int = 16,
    size: int = 64,
    seed: int = 0,
    out: str | Path = "runs/iqa_eval",
    video: int = 0,
    detector: str | None = None,
    greedy: bool = False,
) -> dict[str, Any]:
    """Play the first ``limit`` questions of a split (or the first ``per_type`` of each type;
    all by default) and write the results."""
    from thorgym.envs.iqa import load_questions

    if agent not in EVAL_AGENTS:
        raise ValueError(f"unknown IQA agent {agent!r}; use one of {list(EVAL_AGENTS)}")
    qs = load_questions(split if questions is None else "train", questions)
    if per_type is not None:  # the first n of each type, interleaved (groups stay whole for n % 4 == 0)
        by = [[q for q in qs if q.question_type == t][:per_type] for t in iqa.QUESTION_TYPES]
        qs = [q for trio in zip(*by, strict=False) for q in trio]
    k = len(qs) if limit is None else min(int(limit), len(qs))
    envs = max(1, min(envs, k))
    k -= k % envs
    if k == 0:
        raise ValueError("no questions to evaluate: raise --limit or lower --envs")
    qs = qs[:k]
    torch.manual_seed(seed)
    answerer = None
    det = None
    if agent == "random":
        policy: torch.nn.Module = _Random()
    else:
        if checkpoint is None:
            raise ValueError(f"--agent {agent} needs --checkpoint (a run directory or .pt file)")
        from thorgym.rundir import checkpoint_contents, resolve_checkpoint

        path = resolve_checkpoint(checkpoint, (".pt",))
        state = load_checkpoint(path)
        if state.get("agent") != agent:
            raise ValueError(f"{path} holds a {state.get('agent')!r} agent, not {agent!r}")
        with checkpoint_contents(path, "IQA"):
            policy = build_policy(agent)
            policy.load_state_dict(state["policy"])
            if state.get("answerer") is not None:
                answerer = Answerer()
                answerer.load_state_dict(state["answerer"])
                answerer.eval()
        detector = detector or state.get("detector") or None
    if detector:
        from .detector import load_detector

        det = load_detector(detector)
    policy.eval()
    venv = make_venv(qs, envs, size, iqa.MAX_STEPS, classes=det is None, sample=False)
    drv = IQADriver(
        venv, policy, hierarchical=agent == "himn", answerer=answerer, detector=det, greedy=greedy, seed=seed
    )
    if video:
        drv.frames = [[] for _ in range(envs)]
    drv.reset(seed=seed)
    per_env = k // envs
    done: dict[int, list[dict[str, Any]]] = {i: [] for i in range(envs)}
    videos: list[list[np.ndarray]] = []
    with torch.no_grad():
        while any(len(v) < per_env for v in done.values()):
            drv.tick()
            for r in drv.records:
                i = r["env"]
                if len(done[i]) < per_env:
                    done[i].append(r)
                    if video and len(videos) < video and drv.frames is not None:
                        videos.append(drv.frames[i])
                if drv.frames is not None:
                    drv.frames[i] = []
            drv.records = []
    venv.close()
    records = []
    for j in range(per_env):
        for i in range(envs):
            q = qs[i + envs * j]
            r = done[i][j]
            records.append({**q.to_dict(), **{x: r[x] for x in ("given_answer", "correct", "evidence_seen",
                                                                  "episode_length", "invalid_actions")},
                            "decisions": r["decisions"]})  # fmt: skip
    metrics = iqa.summarize(records)
    metrics |= {
        "agent": agent, "split": split, "questions": k, "checkpoint": str(checkpoint) if checkpoint else None,
        "perception": "detector" if det is not None else "ground truth", "frame_size": size, "seed": seed,
        "most_likely_answer": iqa.most_likely_answer_accuracy(),
    }  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "metrics.json", metrics, indent=1)
    write_text_atomic(out / "episodes.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    for n, frames in enumerate(videos):
        _write_video(out / f"episode_{n}.mp4", frames)
    return metrics


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 8) -> None:
    if not frames:
        return
    import imageio.v2 as imageio

    h, w = frames[0].shape[:2]
    pad = [np.pad(f, ((0, (-h) % 16), (0, (-w) % 16), (0, 0))) for f in frames]
    with atomic_path(path) as p:
        imageio.mimwrite(p, pad, fps=fps, format="FFMPEG", codec="libx264", macro_block_size=16)
