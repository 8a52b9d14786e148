"""PPO from Stable-Baselines3 on the batched ObjectNav vector env: ``ppo-sb3`` (recurrent,
sb3-contrib RecurrentPPO, LSTM 256) and ``ppo-ff`` (feed-forward PPO).

Checkpoints are written atomically every ``checkpoint_every`` steps into ``OUT/checkpoints``
(``ckpt_<steps>.zip`` + a ``.json`` with the run's arguments); ``--resume`` continues from the
newest one. TensorBoard logs go to ``OUT/tb`` (SB3's ``rollout/…``, ``train/…`` plus
``objectnav/success``, ``objectnav/spl``, ``objectnav/episode_length``); the run ends by writing
``OUT/learning_curve.png`` from those logs and ``OUT/final.zip``.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thorgym.rundir import RunDir, resolve_device, set_threads, write_learning_curve

from .policy import EvalContext
from .train_args import TrainArgs

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from thorgym.envs.sb3 import SB3VecEnv

    from .policy import EnvHandle

EXT = ".zip"
RECURRENT_ALGO = "RecurrentPPO"


def make_vec_env(args: TrainArgs, split: str = "train", seed: int | None = None) -> SB3VecEnv:
    """The SB3 vector env of a run (batched on the built-in simulator)."""
    from thorgym.envs.sb3 import SB3VecEnv

    kw: dict[str, Any] = {
        "split": split,
        "width": args.width,
        "height": args.height,
        "backend": args.backend,
        "max_steps": args.max_steps,
    }
    if args.room_types:
        kw["room_types"] = list(args.room_types)
    if args.backend == "sim":
        kw["device"] = str(resolve_device(args.device))
    venv = SB3VecEnv.make(args.env_id, num_envs=args.envs, **kw)
    venv.seed(args.seed if seed is None else seed)
    return venv


def build_model(args: TrainArgs, venv: SB3VecEnv, recurrent: bool | None = None) -> BaseAlgorithm:
    """A fresh model; ``recurrent`` None follows ``args.agent`` (only ``ppo-ff`` is feed-forward)."""
    from thorgym.agents.extractors import BackboneExtractor

    if recurrent is None:
        recurrent = args.agent != "ppo-ff"
    policy_kwargs: dict[str, Any] = {
        "features_extractor_class": BackboneExtractor,
        "features_extractor_kwargs": {
            "backbone": args.backbone,
            "backbone_ckpt": args.backbone_ckpt,
            "frozen": args.freeze_backbone,
            "image_dim": 256,
        },
        "net_arch": {"pi": [128], "vf": [128]},
    }
    common: dict[str, Any] = {
        "n_steps": args.n_steps,
        "batch_size": max(64, args.n_steps * args.envs // 4),
        "learning_rate": args.lr,
        "ent_coef": 0.01,
        "gamma": 0.99,
        "n_epochs": args.epochs,
        "seed": args.seed,
        "device": resolve_device(args.device),
        "verbose": 0,
        "tensorboard_log": str(args.out / "tb"),
    }
    if recurrent:
        from sb3_contrib import RecurrentPPO

        policy_kwargs.update({"lstm_hidden_size": 256, "shared_lstm": False, "enable_critic_lstm": True})
        return RecurrentPPO("MultiInputLstmPolicy", venv, policy_kwargs=policy_kwargs, **common)
    from stable_baselines3 import PPO

    return PPO("MultiInputPolicy", venv, policy_kwargs=policy_kwargs, **common)


def _callback(args: TrainArgs, run: RunDir, meta: dict[str, Any]):
    from stable_baselines3.common.callbacks import BaseCallback

    class ObjectNavCallback(BaseCallback):
        """Task metrics to TensorBoard; atomic checkpoints every `checkpoint_every` steps."""

        def __init__(self) -> None:
            super().__init__()
            self.ended: list[dict[str, float]] = []
            self.next_ckpt = 0

        def _on_training_start(self) -> None:
            self.next_ckpt = run.next_checkpoint(self.num_timesteps, args.checkpoint_every)

        def _on_step(self) -> bool:
            for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
                if done:
                    self.ended.append(
                        {
                            "success": float(info.get("success", 0.0)),
                            "spl": float(info.get("spl", 0.0)),
                            "length": float(info.get("path_length", 0)),
                        }
                    )
            if self.num_timesteps >= self.next_ckpt:
                run.write_checkpoint(
                    run.checkpoint(self.num_timesteps),
                    self.model.save,
                    {**meta, "num_timesteps": self.num_timesteps},
                )
                self.next_ckpt += args.checkpoint_every
            return True

        def _on_rollout_end(self) -> None:
            if self.ended:
                recent = self.ended[-100:]
                self.logger.record("objectnav/success", float(np.mean([e["success"] for e in recent])))
                self.logger.record("objectnav/spl", float(np.mean([e["spl"] for e in recent])))
                self.logger.record("objectnav/episode_length", float(np.mean([e["length"] for e in recent])))
                self.ended = self.ended[-100:]

    return ObjectNavCallback()


def train(args: TrainArgs, recurrent: bool) -> Path:
    """Train (or resume) and return the final checkpoint path."""
    import dataclasses

    if args.mode != "online" and "mode" in args.explicit:
        raise ValueError(f"--agent {args.agent} trains on rendered frames only: use --mode online")
    args = dataclasses.replace(args, mode="online")  # what this trainer sees, recorded in args.json
    set_threads(args.threads)
    run = RunDir(args.out, EXT)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "agent": args.agent,
        "algo": RECURRENT_ALGO if recurrent else "PPO",
        "task": args.task,
        "args": args.to_json(),
        "thorgym_version": _version(),
    }
    venv = make_vec_env(args)
    ckpt = run.resume_from(args.resume)
    if ckpt is not None:
        model = _load_for_resume(ckpt, meta, venv, args)
        print(f"resuming from {ckpt} at {model.num_timesteps} steps")
    else:
        model = build_model(args, venv, recurrent)
    run.write_args(args.to_json())
    remaining = max(0, args.steps - model.num_timesteps)
    t0 = time.time()
    if remaining:
        model.learn(
            remaining,
            callback=_callback(args, run, meta),
            reset_num_timesteps=ckpt is None,
            tb_log_name="run",
            progress_bar=args.progress,
        )
    run.write_checkpoint(
        run.final,
        model.save,
        {**meta, "num_timesteps": model.num_timesteps, "train_seconds": time.time() - t0},
    )
    venv.close()
    write_learning_curve(args.out)
    return run.final


def _algo_class(algo: object) -> type[BaseAlgorithm]:
    if algo == RECURRENT_ALGO:
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    from stable_baselines3 import PPO

    return PPO


def _load_for_resume(ckpt: Path, meta: dict[str, Any], venv: SB3VecEnv, args: TrainArgs) -> BaseAlgorithm:
    algo = json.loads(ckpt.with_suffix(".json").read_text()).get("algo", meta["algo"])
    return _algo_class(algo).load(
        ckpt, env=venv, device=resolve_device(args.device), tensorboard_log=str(args.out / "tb")
    )


def _version() -> str:
    from thorgym import __version__

    return __version__


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[BaseAlgorithm, dict[str, Any]]:
    """Load an SB3 PPO checkpoint written by `thorgym train` (tensors via weights_only loads)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"checkpoint {path} is corrupt or not a thorgym/SB3 checkpoint (not a zip "
            "archive); re-train or pass another file"
        )
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    try:
        model = _algo_class(meta.get("algo")).load(path, device=resolve_device(device))
    except Exception as e:  # SB3 raises assorted errors on damaged archives
        raise ValueError(
            f"checkpoint {path} could not be loaded ({type(e).__name__}: {e}); "
            "it is corrupt or was written by an incompatible version"
        ) from e
    return model, meta


class SB3Policy:
    """A trained Stable-Baselines3 policy; keeps the LSTM state of recurrent ones per episode.

    Actions are sampled from the policy (``deterministic=False``, the default: argmax policies
    tend to loop in navigation) from generators seeded by ``seed``, so runs are reproducible.
    """

    def __init__(self, path: Path, device: str = "cpu", seed: int = 0, deterministic: bool = False) -> None:
        self.checkpoint: Path | None = path
        self.model, self.meta = load_checkpoint(path, device)
        self.model.set_random_seed(seed)
        self.name = str(self.meta.get("agent", "ppo-sb3"))
        self.train_args: Mapping[str, object] = self.meta.get("args", {})
        self.recurrent = self.meta.get("algo") == RECURRENT_ALGO
        self.deterministic = deterministic
        self._state: tuple[np.ndarray, ...] | None = None

    def reset(self, n: int) -> None:
        self._state = None

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray, env: EnvHandle) -> np.ndarray:
        if self.recurrent:
            action, self._state = self.model.predict(
                obs,
                state=self._state,
                episode_start=np.asarray(episode_start, dtype=bool),
                deterministic=self.deterministic,
            )
        else:
            action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action).reshape(-1)


def load_policy(path: Path | None, ctx: EvalContext) -> SB3Policy:
    if path is None:
        raise ValueError("an SB3 policy needs --checkpoint (a .zip file or its run directory)")
    return SB3Policy(path, device=ctx.device, seed=ctx.seed, deterministic=ctx.deterministic)
