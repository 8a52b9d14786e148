"""The arguments of `thorgym train` and its presets: one flat, typed record every agent reads.

Standard library only, so the registry, the CLI and the trainers share it without importing torch.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_AGENT = "ppo"

# Presets: what a run of that name trains. Measured results are in RESULTS.md.
# one GPU: rendered frames on the GPU, an efficient trainable backbone, many envs (unmeasured)
_GPU: dict[str, Any] = {
    "envs": 1024,
    "steps": 50_000_000,
    "width": 64,
    "height": 64,
    "backbone": "espnetv2_s0.5",
    "n_steps": 32,
    "epochs": 2,
    "mode": "online",
    "device": "cuda",
    "checkpoint_every": 2_000_000,
}

PRESETS: dict[str, dict[str, Any]] = {
    # `make demo`: PPO on cached features of five train scenes per room type; minutes on a laptop
    "demo": {
        "envs": 64,
        "steps": 600_000,
        "n_steps": 32,
        "epochs": 4,
        "lr": 1e-3,
        "scenes": tuple(f"FloorPlan{b + k}" for b in (0, 200, 300, 400) for k in range(1, 6)),
    },
    # the default agent (batched PPO on cached features) in at most 30 minutes on one CPU core
    "cpu30": {
        "envs": 128,
        "steps": 5_000_000,
        "n_steps": 32,
        "epochs": 4,
        "lr": 1e-3,
        "checkpoint_every": 500_000,
    },
    # the Stable-Baselines3 path (`--agent ppo-sb3`, rendered frames): the old cpu30 settings
    "cpu30-sb3": {
        "envs": 16,
        "steps": 90_000,
        "epochs": 3,
        "width": 64,
        "height": 64,
        "backbone": "cnn_small",
        "n_steps": 64,
        "max_steps": 50,
        "mode": "online",
    },
    "gpu": _GPU,
    # N GPUs: `torchrun --nproc-per-node N -m thorgym train objectnav --preset gpu-ddp` (DD-PPO:
    # each process steps its own 1024 envs; gradients all-reduced; straggler preemption; unmeasured)
    "gpu-ddp": {**_GPU, "steps": 200_000_000, "checkpoint_every": 5_000_000, "straggler": 0.6},
    # SAVN / non-adaptive (`--agent savn|nonadaptive`) on one CPU core, ~30 minutes: the cached
    # per-pose features (no rendering or backbone per step), 30-step training episodes as the
    # paper, a 3x3 grid and LSTM 128 (paper: 7x7, 512). lr 1e-3, not the paper's 1e-4, for a budget
    # of thousands of outer steps where the paper made millions. The trainer also takes these for a
    # run on CPU without --preset (steps excepted). Measured in docs/savn.md.
    "savn-cpu": {
        "envs": 32,
        "steps": 1_500_000,
        "width": 64,
        "height": 64,
        "backbone": "cnn_small",
        "max_steps": 30,
        "grid": 3,
        "hidden": 128,
        "lr": 1e-3,
    },
    # SAVN on one GPU, paper-like: frozen ResNet-18 at 224 px (7x7x512 map), LSTM 512 (with the
    # default --mode cached: features built once per scene). Unmeasured.
    "savn-gpu": {
        "envs": 64,
        "steps": 20_000_000,
        "width": 224,
        "height": 224,
        "backbone": "resnet18",
        "max_steps": 30,
        "grid": 7,
        "hidden": 512,
        "lr": 1e-4,
        "device": "cuda",
    },
}


@dataclass
class TrainArgs:
    """Arguments of `thorgym train` (one flat, typed record; presets fill unset fields)."""

    task: str = "objectnav"
    agent: str = DEFAULT_AGENT  # a name of thorgym.agents.registry (`thorgym train --help` lists them)
    backbone: str = "cnn_small"
    backbone_ckpt: str | None = None  # a backbone checkpoint file or a `thorgym pretrain` --out dir
    freeze_backbone: bool = False  # keep the (e.g. pretrained) backbone's weights fixed
    envs: int = 16
    steps: int = 100_000
    seed: int = 0
    device: str = "auto"
    out: Path = Path("runs/objectnav")
    backend: str = "sim"
    preset: str | None = None
    resume: bool = False
    checkpoint_every: int = 20_000
    width: int = 64
    height: int = 64
    n_steps: int = 128
    max_steps: int | None = None  # training episode step limit (default: the task's, 100 / 200)
    room_types: tuple[str, ...] = ()
    env_version: str = "v1"  # trains on thorgym/ObjectNav-<env_version> (v1: SAVN's protocol)
    # ppo / savn: "cached" trains on per-pose features of a frozen backbone (thorgym.envs.cached;
    # no rendering), "online" on rendered frames
    mode: str = "cached"
    scenes: tuple[str, ...] = ()  # train on these scenes only (default: the split's)
    threads: int = 1  # torch threads of each training process
    lr: float = 3e-4
    anneal_lr: bool = True  # ppo: decay the learning rate linearly to 0 over the run
    straggler: float = 0.0  # ppo under torchrun: DD-PPO preemption fraction (0.6 in DD-PPO; 0: off)
    epochs: int = 4
    # SAVN / non-adaptive only (thorgym.agents.savn.trainer): feature grid G, LSTM size, inner
    # loop. Without --preset the trainer takes unset ones from savn-cpu / savn-gpu (whichever
    # suits the device), so grid/hidden below are only what a bare TrainArgs holds.
    grid: int = 7
    hidden: int = 512
    inner_lr: float = 1e-4
    first_order: bool = False
    progress: bool = True
    explicit: set[str] = field(default_factory=set, repr=False)

    def with_preset(self) -> TrainArgs:
        if self.preset is None:
            return self
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}: choose one of {sorted(PRESETS)}")
        updates = {k: v for k, v in PRESETS[self.preset].items() if k not in self.explicit}
        return dataclasses.replace(self, **updates)

    @property
    def env_id(self) -> str:
        """The Gymnasium id the run trains on."""
        if not re.fullmatch(r"v\d+", self.env_version):
            raise ValueError(f"--env-version {self.env_version!r}: expected v<N>, e.g. v0")
        return f"thorgym/ObjectNav-{self.env_version}"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("explicit")
        d["out"] = str(self.out)
        d["room_types"] = list(self.room_types)
        d["scenes"] = list(self.scenes)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainArgs:
        """The inverse of :meth:`to_json`; every field counts as given (a preset changes nothing)
        unless ``d["explicit"]`` lists the given ones."""
        d = dict(d)
        given = d.pop("explicit", None)
        known = {f.name for f in dataclasses.fields(cls)} - {"explicit"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainArgs fields {unknown}: known are {sorted(known)}")
        kw = dict(d)
        kw["out"] = Path(kw.get("out", cls.out))
        kw["room_types"] = tuple(kw.get("room_types", ()))
        kw["scenes"] = tuple(kw.get("scenes", ()))
        return cls(**kw, explicit=set(kw) if given is None else set(given))

    def checked(self) -> TrainArgs:
        """These arguments with the preset applied, validated: the environment id must be
        registered and threads positive (a ValueError says what is wrong)."""
        from thorgym.registration import env_ids

        args = self.with_preset()
        if args.task != "objectnav":
            raise ValueError(f"TrainArgs are ObjectNav's; got task {args.task!r}")
        if args.env_id not in env_ids():
            raise ValueError(
                f"--env-version {args.env_version}: {args.env_id} is not registered; "
                f"choose one of {', '.join(env_ids())}"
            )
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        return args

    def given(self, name: str) -> bool:
        """Whether a field was set on the command line or by the preset (else: the agent's own
        default applies, e.g. PPO's hidden size differs from SAVN's)."""
        return name in self.explicit or (self.preset is not None and name in PRESETS.get(self.preset, {}))


@dataclass(frozen=True)
class TrainOptions:
    """Every flag of `thorgym train TASK`, None where the user gave none.

    One record for all tasks, so the CLI has one `train` command and each task's args builder
    (:attr:`thorgym.agents.registry.TaskSpec.train_args`) turns it into the typed arguments of
    its trainers: it takes the flags it knows and lets its own defaults and presets fill the rest.
    Flags a task does not read are ignored, as they always were.
    """

    task: str
    agent: str
    out: Path
    seed: int = 0
    backbone: str | None = None
    backbone_ckpt: str | None = None
    freeze_backbone: bool = False
    envs: int | None = None
    steps: int | None = None
    device: str | None = None
    threads: int = 1
    env_version: str = "v1"
    mode: str = "cached"
    scenes: tuple[str, ...] | None = None
    backend: str = "sim"
    questions: str | None = None
    detector: str | None = None
    preset: str | None = None
    resume: bool = False
    checkpoint_every: int = 20_000
    size: int | None = None
    max_steps: int | None = None
    grid: int | None = None
    hidden: int | None = None
    rollout: int | None = None
    epochs: int | None = None
    lr: float | None = None
    first_order: bool = False
    progress: bool = True
    comm: str = "explicit"
    policy: str = "marginal"
    top_down_map: bool = False
    data: str | None = None  # forces: a `thorgym data forces --out` folder
    class_weight_power: float | None = None  # forces: loss weights = class_weights ** power
    batch_size: int | None = None  # forces: samples per gradient step

    def given(self, *names: str) -> dict[str, Any]:
        """The flags among ``names`` the user gave (not None), by name."""
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def objectnav_train_args(o: TrainOptions) -> TrainArgs:
    """ObjectNav's :class:`TrainArgs` from the CLI's flags, preset applied and checked (the run's
    environment id must be registered)."""
    explicit = o.given("backbone", "envs", "steps", "device", "max_steps", "grid", "hidden", "lr", "epochs",
                       "scenes")  # fmt: skip
    if o.size is not None:
        explicit |= {"width": o.size, "height": o.size}
    if o.rollout is not None:
        explicit["n_steps"] = o.rollout
    args = TrainArgs(
        task=o.task,
        agent=o.agent,
        first_order=o.first_order,
        backbone_ckpt=o.backbone_ckpt,
        freeze_backbone=o.freeze_backbone,
        seed=o.seed,
        out=o.out,
        backend=o.backend,
        preset=o.preset,
        resume=o.resume,
        checkpoint_every=o.checkpoint_every,
        env_version=o.env_version,
        mode=o.mode,
        threads=o.threads,
        progress=o.progress,
        explicit=set(explicit),
        **explicit,
    )
    return args.checked()
