"""`thorgym train objectnav --agent savn|nonadaptive`: SAVN meta-RL and its non-adaptive baseline.

Training runs synchronous batches of episodes on the natively batched ObjectNav vector env: the
N environments start new episodes together (seeded ``seed + 1000003·batch + i``, so a run and its
resumption sample the same episodes), act with one batched forward per step, and an environment
that ends is masked until the whole batch has ended or reached the training step limit (the
paper's 30-step training rollouts). During the episode SAVN adapts its fast weights every 6
actions (:class:`thorgym.agents.savn.FastWeightLearner`); at the end one actor-critic loss
(γ 0.99, GAE λ 1, entropy 0.01, value 0.5, bootstrapped value for truncated episodes) is
differentiated through the inner steps to the initial weights and the interaction-loss network,
then Adam (the paper's SharedAdam, lr 1e-4) takes a step. ``nonadaptive`` is the same loop
without inner steps (the paper's A3C row).

Two observation modes (``args.mode``): ``cached`` (default) trains on
:class:`thorgym.envs.cached.CachedObjectNavVectorEnv`, whose ``features`` observation is the
frozen backbone's pooled ``C × G × G`` map at the agent's pose, looked up per pose instead of
rendered and encoded (thousands of env steps/s); ``online`` renders ``rgb`` frames and runs the
frozen :class:`SpatialBackbone` every step. Both feed the same :class:`SAVNNet`, and a checkpoint
of either acts on either observation (:mod:`.policy` encodes ``rgb`` with the stored backbone).

Without a preset, :func:`train_savn` fills the settings not given on the command line from the
preset that suits the device (``savn-cpu`` on CPU, ``savn-gpu`` on CUDA), except ``steps``.

Run directory layout is :class:`thorgym.rundir.RunDir`'s: ``checkpoints/ckpt_<steps>.pt``
(atomic), ``final.pt``, ``args.json``, ``tb/`` with ``objectnav/success|spl|episode_length`` and
``rollout/ep_rew_mean``, ``learning_curve.png``; the checkpoint format is :mod:`.checkpoint`'s.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thorgym.agents.backbones import build_backbone, load_backbone_state
from thorgym.agents.train_args import TrainArgs
from thorgym.rundir import (
    RunDir,
    exit_terminated,
    resolve_device,
    set_threads,
    stop_on_sigterm,
    termination_requested,
    write_learning_curve,
)

from .adapt import FastWeightLearner
from .checkpoint import CKPT_FORMAT, EXT, load_savn_checkpoint
from .model import SAVNConfig, SAVNNet, SpatialBackbone

SAVN_AGENTS = ("savn", "nonadaptive")
MODES = ("cached", "online")
# preset fields a run without --preset does not take from the device's preset
_NOT_DEFAULTED = ("steps", "device")
ENTROPY_COEF = 0.01
VALUE_COEF = 0.5
GAMMA = 0.99
GAE_LAMBDA = 1.0
MAX_GRAD_NORM = 50.0


def resolve_backbone_ckpt(path: str | None, backbone: str) -> str | None:
    """``None`` → ``runs/pretrain_<backbone>/backbone.pt`` if it exists (the simulator-pretrained
    backbone of `thorgym pretrain`), else the checkpoint thorgym ships for that backbone
    (``cnn_small``), else None (random frozen features); an explicit file or pretrain run
    directory is passed on as given (``load_backbone_state`` resolves a directory and raises
    FileNotFoundError for a missing checkpoint)."""
    if path is None:
        from thorgym.agents.backbones.checkpoint import shipped_checkpoint

        default = Path("runs") / f"pretrain_{backbone}" / "backbone.pt"
        if default.is_file():
            return str(default)
        shipped = shipped_checkpoint(backbone)
        return None if shipped is None else str(shipped)
    return str(path)


def build_savn(
    backbone: str,
    grid: int,
    hidden: int,
    backbone_ckpt: str | None,
    device: str | torch.device,
    cache_init: bool = False,
) -> tuple[SpatialBackbone, SAVNNet]:
    """The frozen spatial backbone and a freshly initialised SAVN network on ``device``.

    ``cache_init``: a backbone without checkpoint is initialised as
    :class:`thorgym.envs.feature_cache.FeatureCache` does (seed 0, the caller's RNG untouched),
    so that it is the backbone whose features the cached env serves.
    """
    if cache_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            bb = build_backbone(backbone)
    else:
        bb = build_backbone(backbone)
    if backbone_ckpt is not None:
        load_backbone_state(bb, backbone_ckpt)
    spatial = SpatialBackbone(bb.to(device), grid)
    net = SAVNNet(SAVNConfig(feature_channels=spatial.channels, grid=grid, hidden=hidden)).to(device)
    return spatial, net


def savn_machine_defaults(args: TrainArgs) -> TrainArgs:
    """``args`` with the settings of the preset suiting its device (``savn-gpu`` on CUDA, else
    ``savn-cpu``) wherever neither a preset nor a command-line flag (``args.explicit``) set them;
    ``steps`` and ``device`` stay as given. With a preset, ``args`` is returned unchanged."""
    from thorgym.agents.train_args import PRESETS

    if args.preset is not None:
        return args
    name = "savn-gpu" if resolve_device(args.device).type == "cuda" else "savn-cpu"
    updates = {k: v for k, v in PRESETS[name].items() if k not in args.explicit and k not in _NOT_DEFAULTED}
    return dataclasses.replace(args, preset=name, **updates)


def make_savn_env(args: TrainArgs, backbone_ckpt: str | None, device: torch.device) -> Any:
    """The training vector env of ``args.mode``: cached per-pose ``features`` or rendered ``rgb``."""
    import gymnasium

    kw: dict[str, Any] = {"max_steps": args.max_steps, "device": str(device)}
    if args.room_types:
        kw["room_types"] = list(args.room_types)
    if args.scenes:
        kw["scenes"] = list(args.scenes)
    if args.mode == "cached":
        if args.backend != "sim":
            raise ValueError("--mode cached runs on the built-in simulator's pose tables; use --mode online")
        kw.update(
            cached=True, backbone=args.backbone, backbone_ckpt=backbone_ckpt, size=args.width, grid=args.grid
        )
    else:
        kw.update(width=args.width, height=args.height, backend=args.backend)
    return gymnasium.make_vec(args.env_id, num_envs=args.envs, split="train", **kw)


def check_mode(args: TrainArgs) -> None:
    mode = args.mode
    if mode not in MODES:
        raise ValueError(
            f"--mode {mode!r}: choose 'cached' (per-pose cached features) or 'online' (rendered frames)"
        )
    if mode == "cached" and args.width != args.height:
        raise ValueError(
            f"cached features are computed on square frames: got {args.width}x{args.height}; "
            "pass --size N or use --mode online"
        )


class SAVNTrainer:
    """Owns the env, networks, optimiser and counters of one SAVN/non-adaptive training run.

    ``env``: a vector env to train on instead of the one ``args`` describe (tests use a cached env
    on a few scenes); it must give ``features`` in ``args.mode == "cached"``, else ``rgb``.
    """

    def __init__(self, args: TrainArgs, env: Any = None) -> None:
        if args.agent not in SAVN_AGENTS:
            raise ValueError(f"SAVNTrainer trains {SAVN_AGENTS}, not {args.agent!r}")
        check_mode(args)
        self.args = args
        self.mode = args.mode
        self.device = resolve_device(args.device)
        torch.manual_seed(args.seed)
        self.backbone_ckpt = resolve_backbone_ckpt(args.backbone_ckpt, args.backbone)
        self.spatial, self.net = build_savn(
            args.backbone,
            args.grid,
            args.hidden,
            self.backbone_ckpt,
            self.device,
            cache_init=self.mode == "cached",
        )
        self.learner = FastWeightLearner(
            self.net,
            args.envs,
            adaptive=args.agent == "savn",
            inner_lr=args.inner_lr,
            first_order=args.first_order,
        )
        params = self.net.parameters() if args.agent == "savn" else self.net.policy_params().values()
        self.opt = torch.optim.Adam(params, lr=args.lr)
        self.env = make_savn_env(args, self.backbone_ckpt, self.device) if env is None else env
        key = "features" if self.mode == "cached" else "rgb"
        spaces = getattr(self.env, "single_observation_space", None)
        if spaces is not None and key not in spaces.spaces:
            raise ValueError(
                f"--mode {self.mode} trains on {key!r} observations but the env gives "
                f"{sorted(spaces.spaces)}; use --mode {'online' if key == 'features' else 'cached'}"
            )
        if key == "features" and spaces is not None:
            dim = int(spaces["features"].shape[-1])
            want = self.spatial.channels * args.grid * args.grid
            if dim != want:
                raise ValueError(
                    f"the env's features have {dim} values, the {args.backbone} map at grid {args.grid} "
                    f"has {want} ({self.spatial.channels}x{args.grid}x{args.grid}): build the cache with "
                    "the same backbone and grid"
                )
        self.gen = torch.Generator(device=self.device).manual_seed(args.seed)
        self.env_steps = 0
        self.batches = 0
        self.episodes: deque[dict[str, float]] = deque(maxlen=100)

    # -- one synchronous batch of episodes ---------------------------------------------------
    def _tensors(self, obs: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        return observation_tensors(obs, self.spatial, self.args.grid, self.device)

    def train_batch(self) -> dict[str, float]:
        """Play one batch of episodes, take one outer (meta) step; returns its statistics."""
        n = self.args.envs
        obs, _ = self.env.reset(seed=self.args.seed * 7919 + 1_000_003 * self.batches)
        self.learner.reset()
        active = np.ones(n, dtype=bool)
        logps, values, ents, rewards, masks = [], [], [], [], []
        truncated = np.zeros(n, dtype=bool)
        inner = 0
        while active.any():
            feats, emb = self._tensors(obs)
            logits, value = self.learner.act(feats, emb)
            dist = torch.distributions.Categorical(logits=logits)
            probs = dist.probs.detach()
            action = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
            logps.append(dist.log_prob(action))
            values.append(value)
            ents.append(dist.entropy())
            obs, rew, term, trunc, info = self.env.step(action.cpu().numpy())
            m = active.copy()
            masks.append(torch.from_numpy(m.astype(np.float32)).to(self.device))
            rewards.append(torch.from_numpy(np.where(m, rew, 0.0).astype(np.float32)).to(self.device))
            ended = m & (term | trunc)
            for i in np.nonzero(ended)[0]:
                self.episodes.append(
                    {
                        "success": float(info["success"][i]),
                        "spl": float(info["spl"][i]),
                        "length": float(info["path_length"][i]),
                        "reward": float(sum(r[i].item() for r in rewards)),
                    }
                )
            truncated |= m & trunc
            active = m & ~(term | trunc)
            self.env_steps += int(m.sum())
            inner += int(self.learner.maybe_adapt(torch.from_numpy(active).to(self.device)).sum())
        # bootstrap truncated episodes with the value of their last observation
        boot = torch.zeros(n, device=self.device)
        if truncated.any():
            feats, emb = self._tensors(obs)
            with torch.no_grad():
                boot = self.learner.value(feats, emb) * torch.from_numpy(truncated).float().to(self.device)
        loss, stats = a2c_loss(logps, values, ents, rewards, masks, boot)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), MAX_GRAD_NORM)
        self.opt.step()
        self.batches += 1
        stats["inner_steps"] = inner / n
        return stats

    # -- checkpoints -----------------------------------------------------------------------------
    def state(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CKPT_FORMAT,
            "agent": self.args.agent,
            "config": self.net.config.to_dict(),
            "backbone": {
                "name": self.args.backbone,
                "grid": self.args.grid,
                "size": self.args.width,
                "ckpt": None if self.backbone_ckpt is None else str(Path(self.backbone_ckpt).resolve()),
            },
            "mode": self.mode,
            "backbone_state": {k: v.cpu() for k, v in self.spatial.backbone.state_dict().items()},
            "model": {k: v.cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "env_steps": self.env_steps,
            "batches": self.batches,
            "rng": {"torch": torch.get_rng_state(), "sampler": self.gen.get_state().cpu()},
            "meta_json": json.dumps(meta),
        }

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.spatial.backbone.load_state_dict(ckpt["backbone_state"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.env_steps = int(ckpt["env_steps"])
        self.batches = int(ckpt["batches"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        self.gen.set_state(ckpt["rng"]["sampler"].cpu())
        self.learner.reset()

    def close(self) -> None:
        self.env.close()


def observation_tensors(
    obs: dict[str, np.ndarray], spatial: SpatialBackbone, grid: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, G, G)`` float features and ``(N, E)`` target embeddings of an observation batch:
    cached ``features`` (flattened C-major, as :func:`thorgym.envs.feature_cache.build_pose_features`
    writes them) are reshaped, ``rgb`` frames go through the frozen backbone."""
    emb = torch.as_tensor(np.asarray(obs["target_embedding"], dtype=np.float32), device=device)
    if "features" in obs:
        f = torch.as_tensor(np.asarray(obs["features"]), device=device).float()
        c = spatial.channels
        if f.dim() != 2 or f.shape[1] != c * grid * grid:
            raise ValueError(
                f"features of shape {tuple(f.shape)} do not match the policy's {c}x{grid}x{grid} map; "
                "the cache must use the backbone and grid the policy was trained with"
            )
        return f.reshape(-1, c, grid, grid), emb
    if "rgb" not in obs:
        raise ValueError(f"SAVN acts on 'features' or 'rgb' observations, got {sorted(obs)}")
    return spatial(torch.as_tensor(np.asarray(obs["rgb"]), device=device)), emb


def a2c_loss(
    logps: list[torch.Tensor],
    values: list[torch.Tensor],
    ents: list[torch.Tensor],
    rewards: list[torch.Tensor],
    masks: list[torch.Tensor],
    bootstrap: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """A3C's loss on (T, N) sequences: Σ_t over each episode, mean over environments.

    GAE with λ (=1: the discounted return minus the value) gives the policy-gradient advantage;
    the value regresses the discounted return; entropy bonus 0.01, value weight 0.5.
    """
    lp, v, ent, r, m = (torch.stack(x) for x in (logps, values, ents, rewards, masks))
    t_len = r.shape[0]
    ret = bootstrap.detach()
    gae = torch.zeros_like(ret)
    next_v = bootstrap.detach()
    returns, advs = [], []
    for t in reversed(range(t_len)):
        ret = r[t] + GAMMA * ret * m[t]
        delta = r[t] + GAMMA * next_v - v[t].detach()
        gae = (gae * GAMMA * GAE_LAMBDA + delta) * m[t]
        next_v = v[t].detach()
        returns.append(ret)
        advs.append(gae)
    returns = torch.stack(returns[::-1])
    advs = torch.stack(advs[::-1])
    policy = -(lp * advs * m).sum(0)
    value = (0.5 * (returns - v) ** 2 * m).sum(0)
    entropy = (ent * m).sum(0)
    loss = (policy + VALUE_COEF * value - ENTROPY_COEF * entropy).mean()
    return loss, {
        "loss": float(loss.detach()),
        "value_loss": float(value.mean().detach()),
        "entropy": float((entropy / m.sum(0).clamp(min=1)).mean().detach()),
    }


@stop_on_sigterm()  # SIGTERM: checkpoint after the batch in progress, then exit
def train_savn(args: TrainArgs, env: Any = None) -> Path:
    """Train (or resume) SAVN / non-adaptive A3C; returns the final checkpoint path."""
    set_threads(args.threads)
    given_preset = args.preset
    args = savn_machine_defaults(args)
    if given_preset is None:
        print(
            f"no --preset: {args.preset} settings for this device (envs {args.envs}, grid {args.grid}, "
            f"hidden {args.hidden}, lr {args.lr:g}, max_steps {args.max_steps}); flags override them"
        )
    # record the backbone the run really uses (args.json, checkpoints' meta), as evaluation
    # rebuilds the cached features from it
    ckpt = resolve_backbone_ckpt(args.backbone_ckpt, args.backbone)
    args = dataclasses.replace(args, backbone_ckpt=None if ckpt is None else str(Path(ckpt).resolve()))
    out = Path(args.out)
    run = RunDir(out, EXT)
    out.mkdir(parents=True, exist_ok=True)
    trainer = SAVNTrainer(args, env=env)
    meta = {
        "agent": args.agent,
        "algo": "SAVN" if args.agent == "savn" else "A3C (non-adaptive)",
        "mode": trainer.mode,
        "task": args.task,
        "args": args.to_json(),
        "backbone_ckpt": trainer.backbone_ckpt,
    }
    if trainer.backbone_ckpt is not None:
        print(f"frozen {args.backbone} backbone from {trainer.backbone_ckpt}")
    else:
        print(
            f"note: no pretrained {args.backbone} checkpoint (runs/pretrain_{args.backbone}/backbone.pt); "
            "the frozen backbone keeps random weights. Run `thorgym pretrain` or pass --backbone-ckpt."
        )
    ckpt_path = run.resume_from(args.resume)
    if ckpt_path is not None:
        trainer.load_state(load_savn_checkpoint(ckpt_path, trainer.device))
        print(f"resuming from {ckpt_path} at {trainer.env_steps} steps")
    run.write_args(args.to_json())
    writer = run.tb_writer(f"{args.agent}_{trainer.env_steps:010d}")
    next_ckpt = run.next_checkpoint(trainer.env_steps, args.checkpoint_every)
    t0, steps0 = time.time(), trainer.env_steps
    try:
        while trainer.env_steps < args.steps:
            stats = trainer.train_batch()
            step = trainer.env_steps
            eps = list(trainer.episodes)
            writer.add_scalar("objectnav/success", float(np.mean([e["success"] for e in eps])), step)
            writer.add_scalar("objectnav/spl", float(np.mean([e["spl"] for e in eps])), step)
            writer.add_scalar("objectnav/episode_length", float(np.mean([e["length"] for e in eps])), step)
            writer.add_scalar("rollout/ep_rew_mean", float(np.mean([e["reward"] for e in eps])), step)
            for k, v in stats.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("time/steps_per_s", (step - steps0) / max(time.time() - t0, 1e-9), step)
            if args.progress and trainer.batches % 10 == 0:
                print(
                    f"{step:>9} steps  success {np.mean([e['success'] for e in eps]):.3f}  "
                    f"spl {np.mean([e['spl'] for e in eps]):.3f}  "
                    f"{(step - steps0) / max(time.time() - t0, 1e-9):.0f} steps/s",
                    flush=True,
                )
            if step >= next_ckpt or termination_requested():
                path = _save(run, trainer.state(meta), run.checkpoint(step))
                next_ckpt = run.next_checkpoint(step, args.checkpoint_every)
                if termination_requested():
                    exit_terminated(path)  # the finally below closes the writer and the envs
        meta["train_seconds"] = time.time() - t0
        final = _save(run, trainer.state(meta), run.final)
    finally:
        writer.close()
        trainer.close()
    write_learning_curve(out)
    return final


def _save(run: RunDir, state: dict[str, Any], path: Path) -> Path:
    return run.write_checkpoint(path, lambda f: torch.save(state, f))
