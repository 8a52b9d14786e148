"""PPO from Stable-Baselines3 on the batched ObjectNav vector env: ``ppo-sb3`` (recurrent,
sb3-contrib RecurrentPPO, LSTM 256) and ``ppo-ff`` (feed-forward PPO).

Checkpoints are written atomically every ``checkpoint_every`` steps into ``OUT/checkpoints``
(``ckpt_<steps>.zip`` + a ``.json`` with the run's arguments); ``--resume`` continues from the
newest one. TensorBoard logs go to ``OUT/tb`` (SB3's ``rollout/…``, ``train/…`` plus
``objectnav/success``, ``objectnav/spl``, ``objectnav/episode_length``); the run ends by writing
``OUT/learning_curve.png`` from those logs and ``OUT/final.zip``.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import io
import json
import pickle
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thorgym.rundir import (
    RunDir,
    exit_terminated,
    read_json,
    resolve_device,
    set_threads,
    stop_on_sigterm,
    termination_requested,
    write_learning_curve,
)

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
            return not termination_requested()  # False ends learn(); train() then checkpoints

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
    with stop_on_sigterm():  # SIGTERM: the callback ends learn(), we checkpoint there and exit
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
        if termination_requested():
            path = run.checkpoint(model.num_timesteps)
            run.write_checkpoint(path, model.save, {**meta, "num_timesteps": model.num_timesteps})
            venv.close()
            exit_terminated(path)
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


# What the pickled entries of an SB3 archive's ``data`` may reference. SB3 unpickles them with
# cloudpickle, which runs whatever a crafted archive asks for; these are what thorgym's own
# checkpoints hold (spaces, numpy arrays and generators, SB3 classes, schedules, the extractor).
_SAFE_MODULES = (
    "gymnasium.spaces", "numpy", "stable_baselines3", "sb3_contrib", "thorgym.agents", "torch.nn",
    "torch.optim", "collections",
)  # fmt: skip
_SAFE_FUNCTIONS = {
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
}


def _safe_class(obj: object) -> bool:
    import gymnasium as gym
    import torch
    from stable_baselines3.common import buffers, policies, torch_layers, utils

    bases = (gym.spaces.Space, np.dtype, np.ndarray, np.random.BitGenerator, np.random.Generator,
             np.random.SeedSequence, np.random.RandomState, policies.BasePolicy, buffers.BaseBuffer,
             torch_layers.BaseFeaturesExtractor, torch.nn.Module, torch.optim.Optimizer, utils.FloatSchedule,
             utils.ConstantSchedule, utils.LinearSchedule)  # fmt: skip
    import collections

    if not isinstance(obj, type):
        return False
    return issubclass(obj, (*bases, np.generic)) or obj in (collections.deque, collections.OrderedDict)


class _CheckingUnpickler(pickle.Unpickler):
    """Resolves only the classes and functions above; anything else is refused, not called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_FUNCTIONS:
            return super().find_class(module, name)
        if any(module == m or module.startswith(m + ".") for m in _SAFE_MODULES):
            obj = getattr(importlib.import_module(module), name, None)
            if _safe_class(obj):
                return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not something a thorgym SB3 checkpoint holds")


def check_sb3_archive(path: Path) -> None:
    """Refuse an SB3 ``.zip`` whose pickled ``data`` entries reference anything but the classes a
    thorgym checkpoint holds, before SB3 unpickles (and would execute) them; ``ValueError``
    naming the file and the entry for that, and for a damaged archive."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = {"data", "policy.pth"} - names
            if missing:
                raise ValueError(f"checkpoint {path} is not an SB3 checkpoint (it lacks {sorted(missing)})")
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problem = f"{type(e).__name__}: {e}"
        raise ValueError(f"checkpoint {path} is corrupt ({problem}); re-train or pass another file") from None
    if not isinstance(data, dict):
        raise ValueError(f"checkpoint {path} is corrupt: its 'data' entry is not a JSON object")
    for key, item in data.items():
        if not (isinstance(item, dict) and ":serialized:" in item):
            continue
        try:
            _CheckingUnpickler(io.BytesIO(base64.b64decode(item[":serialized:"]))).load()
        except pickle.UnpicklingError as e:
            raise ValueError(
                f"refused to load checkpoint {path}: its entry {key!r} is a pickle that references {e}, "
                "which could run code when loaded; only load checkpoints you trust"
            ) from None
        except (binascii.Error, ValueError, TypeError, EOFError, AttributeError, ImportError) as e:
            raise ValueError(f"checkpoint {path} is corrupt: entry {key!r} cannot be decoded ({e})") from None


def _load_for_resume(ckpt: Path, meta: dict[str, Any], venv: SB3VecEnv, args: TrainArgs) -> BaseAlgorithm:
    check_sb3_archive(ckpt)
    algo = read_json(ckpt.with_suffix(".json")).get("algo", meta["algo"])
    return _algo_class(algo).load(
        ckpt, env=venv, device=resolve_device(args.device), tensorboard_log=str(args.out / "tb")
    )


def _version() -> str:
    from thorgym import __version__

    return __version__


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[BaseAlgorithm, dict[str, Any]]:
    """Load an SB3 PPO checkpoint written by `thorgym train` (tensors via weights_only loads)."""
    import gymnasium as gym

    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"checkpoint {path} is corrupt or not a thorgym/SB3 checkpoint (not a zip "
            "archive); re-train or pass another file"
        )
    check_sb3_archive(path)
    meta = read_json(path.with_suffix(".json"))
    try:
        model = _algo_class(meta.get("algo")).load(path, device=resolve_device(device))
    except Exception as e:  # SB3 raises assorted errors on damaged archives
        raise ValueError(
            f"checkpoint {path} could not be loaded ({type(e).__name__}: {e}); "
            "it is corrupt or was written by an incompatible version"
        ) from e
    space = model.observation_space
    if not (isinstance(space, gym.spaces.Dict) and "target" in space.spaces):
        raise ValueError(
            f"checkpoint {path} is an SB3 model of another environment (it observes {space}); an "
            "ObjectNav policy observes a Dict with a 'target' entry: pass one written by "
            "`thorgym train objectnav`"
        )
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
