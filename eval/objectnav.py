"""Evaluation of ObjectNav policies on the fixed held-out episode sets.

:func:`evaluate` is a pure function of (policy, env factory, episodes, seed): the same inputs give
the same per-episode records. Random, oracle and trained policies all go through it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thorgym.agents.policy import EvalContext, Policy
from thorgym.agents.registry import get_agent
from thorgym.atomic import atomic_writer, write_bytes_atomic, write_json_atomic
from thorgym.rundir import resolve_checkpoint
from thorgym.sim.scenes import ROOM_TYPES, room_type
from thorgym.tasks.objectnav import summarize

if TYPE_CHECKING:
    import gymnasium


def select_episodes(episodes: Sequence[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    """The first n episodes taken round-robin over scenes, so a small n covers every scene."""
    if n is None or n >= len(episodes):
        return list(episodes)
    by_scene: dict[str, list[dict[str, Any]]] = {}
    for e in episodes:
        by_scene.setdefault(e["scene"], []).append(e)
    queues = list(by_scene.values())
    out: list[dict[str, Any]] = []
    k = 0
    while len(out) < n:
        for q in queues:
            if k < len(q) and len(out) < n:
                out.append(q[k])
        k += 1
    return out


def evaluate(
    policy: Policy,
    make_env: Callable[[list[dict[str, Any]]], gymnasium.Env],
    episodes: Sequence[dict[str, Any]],
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run `policy` on each fixed episode in order; one record per episode.

    ``make_env(episodes)`` must return an ObjectNav env that plays the given episodes in order
    (``ObjectNavEnv(episodes=...)``, optionally wrapped, e.g. by the video recorder). The policy
    acts as a batch of one: ``episode_start`` is set on the first step of each episode.
    """
    env = make_env(list(episodes))
    records = []
    policy.reset(1)
    try:
        for i, ep in enumerate(episodes):
            obs, info = env.reset(seed=seed) if i == 0 else env.reset()
            total, done, start = 0.0, False, True
            while not done:
                batch = {k: np.asarray(v)[None] for k, v in obs.items()}
                action = policy.act(batch, np.array([start]), env)
                start = False
                obs, reward, terminated, truncated, info = env.step(int(np.asarray(action).reshape(-1)[0]))
                total += float(reward)
                done = terminated or truncated
            records.append(
                {
                    "episode": ep.get("id", i),
                    "scene": info["scene"],
                    "room_type": room_type(info["scene"]),
                    "target": info["target"],
                    "start": {
                        "position": ep["position"],
                        "rotation": ep["rotation"],
                        "horizon": ep["horizon"],
                    },
                    "success": bool(info["success"]),
                    "path_length": int(info["path_length"]),
                    "l_opt": int(info["l_opt"]),
                    "spl": float(info["spl"]),
                    "reward": round(total, 4),
                    "truncated": bool(truncated),
                }
            )
    finally:
        env.close()
    return records


def metrics(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success, SPL and their L_opt ≥ 5 versions (percent), overall and per room type."""

    def block(rs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        # the task's own measures (thorgym.tasks.objectnav.summarize), rounded for the report
        measures = {k: v if k.startswith("episodes") else round(v, 2) for k, v in summarize(rs).items()}
        return {
            **measures,
            "mean_reward": round(float(np.mean([r["reward"] for r in rs])), 4) if rs else float("nan"),
            "mean_path_length": round(float(np.mean([r["path_length"] for r in rs])), 2)
            if rs
            else float("nan"),
        }

    out = {"overall": block(records), "per_room_type": {}}
    for rt in ROOM_TYPES:
        rs = [r for r in records if r["room_type"] == rt]
        if rs:
            out["per_room_type"][rt] = block(rs)
    return out


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """Rows name → metrics block (the 'overall' of :func:`metrics`)."""
    head = f"{'agent':12} {'episodes':>8} {'success':>8} {'SPL':>7} {'succ L>=5':>10} {'SPL L>=5':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        lines.append(
            f"{name:12} {m['episodes']:>8} {m['success']:>8.2f} {m['spl']:>7.2f} "
            f"{m['success_l5']:>10.2f} {m['spl_l5']:>9.2f}"
        )
    return "\n".join(lines)


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def contact_sheet(videos: Sequence[Path], out: Path, per_video: int = 6) -> Path | None:
    """A PNG grid: `per_video` evenly spaced frames (columns) of each recorded episode (rows)."""
    import imageio.v2 as imageio
    from PIL import Image

    rows = []
    for v in videos:
        with imageio.get_reader(v) as reader:
            frames = [np.asarray(f) for f in reader]
        idx = np.linspace(0, len(frames) - 1, min(per_video, len(frames))).round().astype(int)
        picked = [frames[i] for i in idx]
        while len(picked) < per_video:
            picked.append(np.zeros_like(picked[0]))
        rows.append(np.concatenate(picked, axis=1))
    if not rows:
        return None
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    scale = min(1.0, 2400 / sheet.width)
    if scale < 1.0:
        sheet = sheet.resize((int(sheet.width * scale), int(sheet.height * scale)))
    with atomic_writer(out) as f:
        sheet.save(f, format="PNG")
    return out


def feature_source(train_args: dict[str, Any]) -> Any:
    """The per-pose feature lookup a run trained on (``--mode cached``), else None."""
    if train_args.get("mode") != "cached":
        return None
    from thorgym.envs.feature_cache import FeatureCache

    ckpt = train_args.get("backbone_ckpt")  # the run recorded the backbone it resolved
    cache = FeatureCache(
        backbone=str(train_args.get("backbone", "cnn_small")),
        backbone_ckpt=None if ckpt is None else Path(str(ckpt)),
        size=int(train_args.get("width", 64)),
        grid=int(train_args.get("grid", 3)),
    )
    return cache.get


def run_eval(
    agent: str,
    checkpoint: str | None,
    split: str,
    episodes: int | None,
    video: int,
    seed: int,
    out: Path,
    device: str = "cpu",
    episode_file: str | None = None,
    deterministic: bool = False,
    env_version: str | None = None,
) -> dict[str, Any]:
    """`thorgym eval objectnav`: evaluate, write metrics.json / episodes.jsonl / videos.

    The task version is ``env_version``, else the one the checkpoint was trained on (runs from
    before versions existed trained on v0), else v1. A policy trained on cached features
    (``--mode cached``) plays on the pose tables, or on rendered frames with the cached feature
    of each pose added when videos are recorded: the same episodes either way.
    """
    from thorgym.datasets.objectnav import load_episodes
    from thorgym.envs.cached import PoseFeatures, cached_objectnav_env
    from thorgym.envs.objectnav import ObjectNavEnv
    from thorgym.envs.video import RecordEpisodeVideo

    spec = get_agent(agent)
    path: Path | None = None
    if spec.needs_checkpoint:
        if checkpoint is None:
            raise ValueError(f"--agent {agent} needs --checkpoint (a checkpoint file or run dir)")
        path = resolve_checkpoint(checkpoint, spec.checkpoint_suffixes)
    policy = spec.load_policy(path, EvalContext(device=device, seed=seed, deterministic=deterministic))
    targs = dict(policy.train_args)
    version = env_version or str(targs.get("env_version", "v0" if targs else "v1"))
    env_kw: dict[str, Any] = {
        "width": targs.get("width", 64),
        "height": targs.get("height", 64),
        "version": version,
    }
    features_fn = feature_source(targs)
    ckpt_path = str(policy.checkpoint) if policy.checkpoint is not None else None
    eps = select_episodes(load_episodes(episode_file or split, version=version), episodes)
    out.mkdir(parents=True, exist_ok=True)

    blind = not spec.needs_checkpoint  # random and oracle do not look at frames

    def make_env(episode_list: list[dict[str, Any]]):
        if (features_fn is not None or blind) and video == 0:
            return cached_objectnav_env(
                features_fn, version=version, split=split, episodes=episode_list, size=int(env_kw["width"])
            )
        env = ObjectNavEnv(split=split, episodes=episode_list, device="cpu", **env_kw)
        if features_fn is not None:
            env = PoseFeatures(env, features_fn)
        if video > 0:
            env = RecordEpisodeVideo(env, out, episode_trigger=lambda i: i < video, name_prefix=f"{agent}")
        return env

    records = evaluate(policy, make_env, eps, seed)
    m = metrics(records)
    from thorgym import __version__

    result = {
        "task": "objectnav",
        "agent": agent,
        "split": split,
        "env_version": version,
        "seed": seed,
        "checkpoint": ckpt_path,
        "deterministic": deterministic,
        "episodes": len(records),
        "metrics": m["overall"],
        "per_room_type": m["per_room_type"],
        "thorgym_version": __version__,
        "git_revision": git_revision(),
    }
    write_json_atomic(out / "metrics.json", result, indent=1)
    write_bytes_atomic(out / "episodes.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
    if video > 0:
        vids = sorted(out.glob(f"{agent}-episode-*.mp4"))[:video]
        contact_sheet(vids, out / "contact_sheet.png")
    return result
