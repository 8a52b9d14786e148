"""``thorgym eval furnlift|furnmove``: play the shipped evaluation episodes and write the results.

Agents: ``tbone`` (a checkpoint of ``thorgym train furnlift|furnmove``), ``random`` (uniform
joint actions) and ``expert`` (the task's shortest-path expert, the oracle). The same first
``--episodes`` episodes of the split are played by every agent. Outputs: ``OUT/metrics.json``
(the task's measures, plus the policy's invalid-action probability mass and TVD for learned
agents), ``OUT/episodes.jsonl`` and, with ``--video K``, K mp4 files showing both agents' views
side by side with a top-down map (agent 0 blue, agent 1 green; FurnLift's Television or FurnMove's
goal ringed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thorgym.atomic import atomic_writer, write_json_atomic
from thorgym.tasks import furniture as fur

from .distributions import invalid_mass, sample_joint, tvd
from .trainer import load_model, make_env, to_obs, valid_masks

EVAL_AGENTS = ("tbone", "random", "expert")


@dataclass(frozen=True)
class FurnitureEvalArgs:
    """Arguments of `thorgym eval furnlift|furnmove` (those of :func:`evaluate_furniture`)."""

    task: str
    agent: str
    checkpoint: str | Path | None = None
    split: str = "test"
    episodes: int = 100
    envs: int = 8
    seed: int = 0
    out: str | Path = "runs/furniture_eval"
    video: int = 0
    device: str = "cpu"
    greedy: bool = False
    size: int = fur.FRAME_SIZE
    max_steps: int = fur.MAX_STEPS


def run_furniture_eval(args: FurnitureEvalArgs) -> dict[str, Any]:
    """:func:`evaluate_furniture` of typed arguments (the registry's evaluator of the two-body
    agents)."""
    return evaluate_furniture(**asdict(args))


def evaluate_furniture(
    *,
    task: str,
    agent: str,
    checkpoint: str | Path | None = None,
    split: str = "test",
    episodes: int = 100,
    envs: int = 8,
    seed: int = 0,
    out: str | Path = "runs/furniture_eval",
    video: int = 0,
    device: str = "cpu",
    greedy: bool = False,
    size: int = fur.FRAME_SIZE,
    max_steps: int = fur.MAX_STEPS,
) -> dict[str, Any]:
    """Play the first ``episodes`` episodes of the split; returns (and writes) the metrics.
    ``size`` is the frame size of the random and expert agents (tbone plays at its checkpoint's);
    ``max_steps`` the joint-step limit (250, the task's)."""
    if agent not in EVAL_AGENTS:
        raise ValueError(f"unknown furniture agent {agent!r}: choose from {EVAL_AGENTS}")
    if task not in ("furnlift", "furnmove"):
        raise ValueError(f"unknown furniture task {task!r}: choose from ('furnlift', 'furnmove')")
    if agent == "tbone" and checkpoint is None:
        raise ValueError("--agent tbone needs --checkpoint (a file or a run directory)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = None
    visible, top_down = True, False
    if agent == "tbone":
        from thorgym.rundir import resolve_checkpoint

        model, ckpt = load_model(resolve_checkpoint(checkpoint, (".pt",)), device)
        model.eval()
        if ckpt["args"]["task"] != task:
            raise ValueError(f"the checkpoint was trained on {ckpt['args']['task']}, not {task}")
        size = int(ckpt["config"]["image_size"])
        visible = ckpt["args"]["comm"] in ("implicit", "both")
        top_down = bool(ckpt["args"].get("top_down_map", False))
    from thorgym.datasets.furniture import load_episodes

    k = min(int(episodes), len(load_episodes(task, split)))
    n = max(1, min(envs, k))
    env = make_env(task, split, n, size, visible, max_steps, False, top_down)
    ind_valid, joint_valid = valid_masks(task, torch.device(device))
    valid = ind_valid | joint_valid
    gen = torch.Generator().manual_seed(seed)
    env.reset(seed=seed)
    played = np.zeros(n, dtype=np.int64)  # episodes finished per world; world i plays i, i+n, …
    records: list[dict[str, Any]] = []
    per_step: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    state = model.initial_state(n, device) if model is not None else None
    fresh = torch.ones(n, dtype=torch.bool)
    videos: dict[int, list[np.ndarray]] = {}
    while (np.arange(n) + played * n < k).any():
        obs = to_obs(env.observe_stacked(), torch.device(device))
        alive = ~env.needs_reset
        if model is not None:
            with torch.no_grad():
                o = model(obs, state, reset=fresh.to(device))
            state = o.state
            if greedy:  # the most likely joint action
                flat = o.joint_log_probs.flatten(1).argmax(1)
                k_act = o.joint_log_probs.shape[-1]
                acts = torch.stack([flat // k_act, flat % k_act], -1).cpu().numpy()
            else:
                acts = sample_joint(o.joint_log_probs, generator=gen).cpu().numpy()
            inv = invalid_mass(o.joint_log_probs, valid).cpu().numpy()
            tv = tvd(o.joint_log_probs).cpu().numpy()
            for i in np.nonzero(alive)[0]:
                per_step[i].append((float(inv[i]), float(tv[i])))
        elif agent == "expert":
            acts = env.expert_actions()
        else:
            acts = rng.integers(len(env.task.action_names), size=(n, 2))
        for i in np.nonzero(alive)[0]:
            ep_index = int(i + played[i] * n)
            if ep_index < video:
                videos.setdefault(ep_index, []).append(_video_frame(env, int(i), acts[i]))
        _, _, term, trunc, info = env.step(np.asarray(acts, dtype=np.int64))
        done = (term | trunc) & alive
        fresh = torch.as_tensor(done | ~alive)
        for i in np.nonzero(done)[0]:
            ep_index = int(i + played[i] * n)
            if ep_index < k:
                rec = env.task.record(int(i))
                rec["episode"] = ep_index
                if per_step[i]:
                    rec["invalid_mass"] = float(np.mean([s[0] for s in per_step[i]]))
                    rec["tvd"] = float(np.mean([s[1] for s in per_step[i]]))
                records.append(rec)
                if ep_index in videos:
                    videos[ep_index].append(_video_frame(env, int(i), None))
            per_step[i] = []
            played[i] += 1
    env.close()
    records.sort(key=lambda r: r["episode"])
    metrics = fur.summarize(records)
    if records and "invalid_mass" in records[0]:
        metrics["invalid_mass"] = float(np.mean([r["invalid_mass"] for r in records]))
        metrics["tvd"] = float(np.mean([r["tvd"] for r in records]))
    metrics.update(
        {
            "task": task,
            "agent": agent,
            "split": split,
            "seed": seed,
            "checkpoint": None if checkpoint is None else str(checkpoint),
        }
    )
    write_json_atomic(out / "metrics.json", metrics, indent=1)
    with atomic_writer(out / "episodes.jsonl") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records).encode())
    _write_videos(out, task, videos)
    return metrics


def _video_frame(env: Any, i: int, acts: np.ndarray | None) -> np.ndarray:
    from thorgym.envs.video import compose_frame, draw_topdown

    rgb = env.observe_stacked()["rgb"][i]
    view = np.concatenate([rgb[0], np.full((rgb.shape[1], 2, 3), 255, np.uint8), rgb[1]], axis=1)
    poses = env.worlds.poses()[i]
    path = [p[0] for p in env.task.paths[i]]
    target = fur.TELEVISION if env.task.name == "furnlift" else env.task.goal_type  # FurnMove: the goal
    top = draw_topdown(env.worlds.layout(i), path=path, target=target, size=192, others=[poses[1]])
    names = env.task.action_names
    info = env.task.info()
    lines = [f"{env.task.name} {info['scene'][i]}  step {int(info['episode_length'][i])}"]
    if acts is not None:
        lines.append(f"agent_0: {names[int(acts[0])]}   agent_1: {names[int(acts[1])]}")
    else:
        lines.append("success" if bool(info["success"][i]) else "ended")
    return compose_frame(view, top, lines, height=192)


def _write_videos(out: Path, task: str, videos: dict[int, list[np.ndarray]]) -> None:
    from thorgym.envs.video import EpisodeVideoWriter

    for k, frames in sorted(videos.items()):
        w = EpisodeVideoWriter(out / f"{task}_episode_{k:03d}.mp4", fps=6)
        for f in frames:
            w.add(f)
        w.close()


__all__ = ["EVAL_AGENTS", "FurnitureEvalArgs", "evaluate_furniture", "run_furniture_eval"]
