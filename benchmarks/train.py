"""`thorgym bench train`: training throughput of SAVN against its non-adaptive baseline.

Both agents train in the same process on the same envs, backbone and frame size, one after the
other, for the same number of synchronous episode batches after one warm-up batch; the record
is environment steps (of running episodes) per second of wall time, everything included
(simulation, frozen backbone, acting, inner steps, meta-gradient). The ratio is the price of
adaptation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from thorgym.benchmarks.table import text_table


def run(
    agents: Sequence[str] = ("savn", "nonadaptive"),
    preset: str = "savn-cpu",
    batches: int = 5,
    envs: int | None = None,
    device: str | None = None,
    first_order: bool = False,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One record per agent: env steps/s of training under ``preset`` (overridable envs/device)."""
    from thorgym.train import TrainArgs
    from thorgym.train_savn import SAVNTrainer

    records = []
    for agent in agents:
        explicit = {k: v for k, v in {"envs": envs, "device": device}.items() if v is not None}
        args = TrainArgs(
            agent=agent,
            preset=preset,
            seed=seed,
            first_order=first_order,
            out=Path("runs/bench_train"),
            explicit=set(explicit),
            **explicit,
        ).with_preset()
        trainer = SAVNTrainer(args)
        try:
            trainer.train_batch()  # warm-up: scene loading, allocator
            steps0, t0 = trainer.env_steps, time.perf_counter()
            inner = 0.0
            for _ in range(batches):
                inner += trainer.train_batch()["inner_steps"]
            seconds = time.perf_counter() - t0
            steps = trainer.env_steps - steps0
        finally:
            trainer.close()
        records.append(
            {
                "agent": agent,
                "preset": preset,
                "envs": args.envs,
                "size": args.width,
                "backbone": args.backbone,
                "grid": args.grid,
                "hidden": args.hidden,
                "first_order": bool(first_order) if agent == "savn" else None,
                "device": trainer.device,
                "batches": batches,
                "env_steps": steps,
                "seconds": round(seconds, 3),
                "steps_per_s": round(steps / seconds, 2),
                "inner_steps_per_episode": round(inner / batches, 2),
                "args": {k: v for k, v in dataclasses.asdict(args).items() if k in ("lr", "max_steps")},
            }
        )
    return records


def format_table(records: Sequence[dict[str, Any]]) -> str:
    head = f"{'agent':12} {'envs':>4} {'size':>4} {'backbone':>12} {'grid':>4} {'steps/s':>9} {'inner/ep':>8}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['agent']:12} {r['envs']:>4} {r['size']:>4} {r['backbone']:>12} {r['grid']:>4} "
            f"{r['steps_per_s']:>9.1f} {r['inner_steps_per_episode']:>8.2f}"
        )
    if len(records) == 2 and records[1]["steps_per_s"] > 0:
        lines.append(
            f"ratio {records[0]['agent']}/{records[1]['agent']}: "
            f"{records[0]['steps_per_s'] / records[1]['steps_per_s']:.2f}"
        )
    return "\n".join(lines)


# -- PPO (thorgym.agents.ppo) -------------------------------------------------------------------
PPO_MODES = ("cached", "online", "online-trainable", "synthetic")
# Scenes the benchmark trains on: five per room type, so a first run builds few feature files.
BENCH_SCENES = tuple(f"FloorPlan{b + k}" for b in (0, 200, 300, 400) for k in range(1, 6))


def ppo_env_factory(mode: str, envs: int, size: int = 64, dim: int = 576) -> Callable[[], Any]:
    """A VectorEnv factory per mode: ``cached`` = the pose-table ObjectNav-v1 env with the
    shipped pretrained cnn_small's per-pose features (3×3 grid: 576-d); ``online`` and
    ``online-trainable`` = ObjectNavVectorEnv with ``rgb`` size×size frames (the trainer's
    cnn_small encodes them, frozen or trained); ``synthetic`` = a pose-table env with ``dim``-d
    fp16 ``features`` (the trainer alone, almost no environment cost)."""
    if mode == "cached":
        from thorgym.agents.backbones.checkpoint import shipped_checkpoint
        from thorgym.envs.cached import CachedObjectNavVectorEnv

        ckpt = shipped_checkpoint("cnn_small")
        return lambda: CachedObjectNavVectorEnv(
            envs, scenes=BENCH_SCENES, version="v1", backbone_ckpt=ckpt, size=size, grid=3
        )
    if mode in ("online", "online-trainable"):
        from thorgym.envs.vector import ObjectNavVectorEnv

        return lambda: ObjectNavVectorEnv(envs, scenes=BENCH_SCENES, width=size, height=size, version="v1")
    if mode == "synthetic":
        from thorgym.agents.ppo.toy import SyntheticPoseEnv

        return lambda: SyntheticPoseEnv(envs, dim=dim)
    raise ValueError(f"unknown PPO bench mode {mode!r}: use one of {PPO_MODES} (or pass your own factory)")


def run_ppo(
    make_env: Callable[[], Any],
    mode: str,
    *,
    rollouts: int = 3,
    rollout: int = 32,
    device: str = "cpu",
    threads: int = 1,
    **config: Any,
) -> dict[str, Any]:
    """Env steps/s of PPO training (rollout + GAE + update, everything included) on
    ``make_env()``, timed over ``rollouts`` iterations after one warm-up iteration.

    ``config`` overrides :class:`thorgym.agents.ppo.PPOConfig` fields (e.g. ``minibatches``,
    ``hidden``, ``backbone``). The record: ``{agent, mode, device, threads, envs, steps_per_s,
    rollout, env_steps, seconds}``.
    """
    import tempfile

    from thorgym.agents.ppo import PPOConfig, train

    if rollouts < 1:
        raise ValueError(f"rollouts must be >= 1, got {rollouts}")
    env = make_env()
    try:
        n = env.num_envs
        cfg = PPOConfig(
            steps=(rollouts + 1) * n * rollout, rollout=rollout, device=device, threads=threads, **config
        )
        stamps: list[tuple[int, float]] = []
        with tempfile.TemporaryDirectory(prefix="thorgym-bench-ppo-") as out:
            train(env, cfg, Path(out), log=lambda s: stamps.append((s["global_step"], time.perf_counter())))
    finally:
        env.close()
    (s0, t0), (s1, t1) = stamps[0], stamps[-1]
    return {
        "agent": "ppo",
        "mode": mode,
        "device": device,
        "threads": threads,
        "envs": n,
        "rollout": rollout,
        "env_steps": s1 - s0,
        "seconds": round(t1 - t0, 3),
        "steps_per_s": round((s1 - s0) / (t1 - t0), 1),
    }


def run_ppo_modes(
    modes: Sequence[str] = PPO_MODES,
    envs: int = 128,
    *,
    size: int = 64,
    rollouts: int = 3,
    device: str = "cpu",
    threads: int = 1,
    **config: Any,
) -> list[dict[str, Any]]:
    """One :func:`run_ppo` record per mode, each on :func:`ppo_env_factory`'s environment
    (``online`` freezes the shipped pretrained backbone, ``online-trainable`` trains it)."""
    from thorgym.agents.backbones.checkpoint import shipped_checkpoint

    records = []
    for m in modes:
        kw = dict(config)
        if m.startswith("online"):
            kw.setdefault("backbone_ckpt", str(shipped_checkpoint("cnn_small")))
            kw.setdefault("freeze_backbone", m == "online")
        make = ppo_env_factory(m, envs, size)
        records.append(run_ppo(make, m, rollouts=rollouts, device=device, threads=threads, **kw))
    return records


def run_sb3(envs: int = 16, size: int = 64, steps: int = 2048, threads: int = 1) -> dict[str, Any]:
    """Env steps/s of the Stable-Baselines3 path (``--agent ppo-sb3``: RecurrentPPO over rendered
    frames with a trainable cnn_small), timed over ``steps`` after a warm-up of one rollout."""
    import dataclasses

    from thorgym.agents import sb3_ppo
    from thorgym.agents.train_args import PRESETS, TrainArgs
    from thorgym.rundir import set_threads

    set_threads(threads)
    preset = PRESETS["cpu30-sb3"]
    args = dataclasses.replace(
        TrainArgs(agent="ppo-sb3", env_version="v1", mode="online", device="cpu", progress=False),
        **{**preset, "envs": envs, "width": size, "height": size},
    )
    venv = sb3_ppo.make_vec_env(args)
    try:
        model = sb3_ppo.build_model(args, venv)
        model.tensorboard_log = None
        model.learn(args.n_steps * envs)  # warm-up: one rollout and update
        t = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        dt = time.perf_counter() - t
    finally:
        venv.close()
    done = max(steps, args.n_steps * envs)  # SB3 finishes the rollout it started
    return {
        "agent": "ppo-sb3",
        "mode": "sb3",
        "device": "cpu",
        "threads": threads,
        "envs": envs,
        "steps_per_s": round(done / dt, 1),
    }


def format_ppo_table(records: Sequence[dict[str, Any]]) -> str:
    cols = ["agent", "mode", "device", "threads", "envs", "steps/s"]
    rows = [
        [str(r["agent"]), str(r["mode"]), str(r["device"]), str(r["threads"]), str(r["envs"]),
         f"{r['steps_per_s']:.1f}"]
        for r in records
    ]  # fmt: skip
    return "\n".join(text_table(cols, rows))
