"""``thorgym train furnlift|furnmove --agent tbone``: the communicating agents, trained as the papers
do but synchronously batched.

- Actor-critic on the team reward (the sum of both agents' rewards) with the model's joint action
  distribution: rollouts of 16 steps over N environments, truncated backpropagation through time,
  GAE, entropy bonus, and ``epochs`` passes of PPO's clipped objective per rollout (the papers run
  A3C, one pass; several passes give a CPU budget more updates per environment step).
- Warm start from the shortest-path expert (``thorgym.tasks.furniture`` ``expert_actions``): on
  each step the expert's joint action is executed with probability 0.9·(1 − episode / E)
  (E = ``--expert-episodes``, 10,000 in the paper), and a behaviour-cloning term −log P(expert
  joint action) is added on every step (DAgger); the policy-gradient term uses only the steps
  where the policy's own action was executed.
- The CORDIAL loss (FurnMove) with weight max(0.01, (5000 − episode)/5000).
- Implicit communication is the env's: partners are rendered (``makeAgentsVisible``) for comm
  "implicit" and "both", hidden for "explicit" and "none".

Checkpoints (``OUT/checkpoints/ckpt_<steps>.pt``, atomic) hold the model, optimiser, step and
episode counts and random states; ``--resume`` continues from the newest. TensorBoard scalars
go to ``OUT/tb``, the learning curve to ``OUT/learning_curve.png``.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thorgym.agents.train_args import TrainOptions
from thorgym.atomic import write_json_atomic
from thorgym.rundir import (
    RunDir,
    checkpoint_contents,
    exit_terminated,
    load_torch_checkpoint,
    stop_on_sigterm,
    termination_requested,
)
from thorgym.tasks import furniture as fur

from .distributions import joint_entropy, joint_log_prob, sample_joint
from .losses import cordial_loss, cordial_weight
from .model import COMM_MODES, POLICIES, TBone, TBoneConfig

CHECKPOINT_FORMAT = "thorgym-tbone-v1"
TASKS = ("furnlift", "furnmove")


@dataclass
class FurnitureTrainArgs:
    """Arguments of ``thorgym train furnlift|furnmove`` (defaults: the CPU budget of RESULTS.md)."""

    task: str = "furnlift"
    comm: str = "explicit"
    policy: str = "marginal"
    out: Path = Path("runs/furnlift")
    envs: int = 8
    steps: int = 25_000  # joint environment steps
    size: int = 64  # frame size (square; 84 as the paper: slower, one more render per step)
    hidden: int = 128
    seed: int = 0
    lr: float = 1e-3
    rollout: int = 16  # steps per update (the paper: 50; shorter gives more updates per step)
    gamma: float = 0.99
    lam: float = 0.95
    entropy: float = 0.01
    value_coef: float = 0.5
    imitation: float = 1.0
    epochs: int = 4  # passes over each rollout (PPO); the papers' A3C makes one
    clip: float = 0.2
    expert_episodes: int = 600  # expert probability 0.9·(1 − episode / this), as 10,000 in the paper
    cordial: bool = True  # FurnMove only (every FurnLift pair is valid)
    top_down_map: bool = False  # also the top-down map, stacked onto the RGB frame
    max_steps: int = fur.MAX_STEPS
    resume: bool = False
    checkpoint_every: int = 10_000
    device: str = "cpu"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, o: TrainOptions) -> FurnitureTrainArgs:
        """The arguments of `thorgym train furnlift|furnmove` from its flags (unset ones: these
        defaults)."""
        explicit = o.given("envs", "steps", "size", "hidden", "lr", "rollout", "max_steps", "device")
        args = cls(
            task=o.task, comm=o.comm, policy=o.policy, out=o.out, seed=o.seed, resume=o.resume,
            top_down_map=o.top_down_map, checkpoint_every=o.checkpoint_every, progress=o.progress, **explicit,
        )  # fmt: skip
        args.validate()
        return args

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown furniture task {self.task!r}: choose from {TASKS}")
        if self.comm not in COMM_MODES:
            raise ValueError(f"--comm must be one of {COMM_MODES}, got {self.comm!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"--policy must be one of {POLICIES}, got {self.policy!r}")
        for k in ("envs", "steps", "size", "rollout", "hidden", "epochs"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"--{k} must be positive, got {getattr(self, k)}")
        if self.size < 32:
            raise ValueError(f"--size must be at least 32 pixels, got {self.size}")

    @property
    def agents_visible(self) -> bool:
        return self.comm in ("implicit", "both")


def model_config(
    task: str, comm: str, policy: str, size: int, hidden: int, top_down_map: bool = False
) -> TBoneConfig:
    k = len(fur.FURNLIFT_ACTIONS if task == "furnlift" else fur.FURNMOVE_ACTIONS)
    mixture = (2 if task == "furnlift" else k) if policy == "sync" else None
    return TBoneConfig(
        num_actions=k,
        comm=comm,
        policy=policy,
        hidden=hidden,
        message_dim=8 if task == "furnlift" else 16,
        mixture=mixture,
        image_size=size,
        extra_channels=len(AGENT_MAP_CHANNELS) if top_down_map else 0,
    )


def make_env(
    task: str,
    split: str,
    envs: int,
    size: int,
    agents_visible: bool,
    max_steps: int,
    sample: bool,
    top_down_map: bool = False,
) -> Any:
    from thorgym.envs.furniture import make_furniture_vec

    return make_furniture_vec(
        envs, task, split=split, width=size, height=size, agents_visible=agents_visible,
        max_steps=max_steps, sample=sample, top_down_map=top_down_map,
    )  # fmt: skip


# The map channels the agents read: the room, the Television, itself and the goal. The partner's
# channel is left out so that where the partner is stays a matter of communication (seeing it,
# implicit; or being told, explicit), as in the papers' egocentric setting.
AGENT_MAP_CHANNELS = tuple(fur.MAP_CHANNELS.index(c) for c in ("obstacles", "television", "self", "goal"))


def to_obs(raw: dict[str, np.ndarray], device: torch.device) -> torch.Tensor:
    """(N, 2, C, H, W) uint8 tensor of the agents' RGB frames (C = 3), with the top-down map's
    channels of :data:`AGENT_MAP_CHANNELS` after them when the env gives one (C = 3 + 4)."""
    x = raw["rgb"]
    if "map" in raw:
        x = np.concatenate([x, raw["map"][..., list(AGENT_MAP_CHANNELS)]], axis=-1)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 1, 4, 2, 3).to(device)


def valid_masks(task: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(individual_valid, joint_valid) (K, K) masks of the task's joint actions."""
    from .losses import furnlift_valid_pairs, furnmove_valid_pairs

    ind, joint = furnlift_valid_pairs() if task == "furnlift" else furnmove_valid_pairs()
    return ind.to(device), joint.to(device)


def save_checkpoint(
    run: RunDir, path: Path, model: TBone, opt: Any, state: dict[str, Any], args: FurnitureTrainArgs
) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.cfg),
        "model": model.state_dict(),
        "optimizer": None if opt is None else opt.state_dict(),
        "state": state,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(args).items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return run.write_checkpoint(path, lambda f: f.write(buf.getvalue()))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[TBone, dict[str, Any]]:
    """The model of a tbone checkpoint, and the checkpoint's contents."""
    hint = "train one with `thorgym train furnlift|furnmove --agent tbone`"
    ckpt = load_torch_checkpoint(path, CHECKPOINT_FORMAT, "tbone", hint)  # weights only: no code runs
    with checkpoint_contents(path, "tbone"):
        model = TBone(TBoneConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        missing = {"task", "comm"} - set(ckpt["args"])  # the evaluator reads them
        if missing:
            raise KeyError(f"'args' lacks {sorted(missing)}")
    return model.to(device), ckpt


@stop_on_sigterm()  # SIGTERM: checkpoint after the update in progress, then exit
def train_furniture(args: FurnitureTrainArgs) -> Path:
    """Train the communicating agents; returns the final checkpoint."""
    from thorgym.device import resolve_device

    args.validate()
    device = resolve_device(args.device)
    run = RunDir(Path(args.out), ".pt")
    run.root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = model_config(args.task, args.comm, args.policy, args.size, args.hidden, args.top_down_map)
    model = TBone(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = episodes = 0
    start = run.resume_from(args.resume)
    if start is not None:
        _, ckpt = load_model(start, device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        steps, episodes = ckpt["state"]["steps"], ckpt["state"]["episodes"]
        rng.bit_generator.state = ckpt["state"]["numpy_rng"]
        torch.set_rng_state(ckpt["state"]["torch_rng"])
        print(f"resumed from {start} at {steps} steps")
    run.write_args({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(args).items()})
    env = make_env(
        args.task, "train", args.envs, args.size, args.agents_visible, args.max_steps, True, args.top_down_map
    )
    raw, _ = env.reset(seed=args.seed * 1000 + steps)
    obs = to_obs(env.observe_stacked(), device)
    n = args.envs
    state = model.initial_state(n, device)
    fresh = torch.ones(n, dtype=torch.bool, device=device)
    ind_valid, joint_valid = valid_masks(args.task, device)
    writer = run.tb_writer(f"start_{steps:010d}")
    next_ckpt = run.next_checkpoint(steps, args.checkpoint_every)
    recent: list[dict[str, Any]] = []
    t0, s0 = time.time(), steps
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(
            total=args.steps, initial=steps, unit="step", desc=f"{args.task}/{args.comm}/{args.policy}"
        )
    while steps < args.steps:
        # Collect a rollout without gradients, then `epochs` passes of the clipped actor-critic
        # objective (PPO) with behaviour cloning of the expert, re-running the recurrent model
        # over the rollout from its first state each pass.
        first = (state[0].detach(), state[1].detach())
        keys = ("obs", "fresh", "acts", "expert", "old", "values", "rewards", "dones", "own", "alive")
        roll: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        with torch.no_grad():
            for _ in range(args.rollout):
                out = model(obs, state, reset=fresh)
                state = out.state
                p_expert = max(0.0, 0.9 * (1.0 - episodes / max(1, args.expert_episodes)))
                sampled = sample_joint(out.joint_log_probs)
                expert = torch.as_tensor(env.expert_actions(), dtype=torch.long, device=device)
                use_expert = torch.as_tensor(rng.random(n) < p_expert, device=device)
                acts = torch.where(use_expert[:, None], expert, sampled)
                alive = ~torch.as_tensor(env.needs_reset, device=device)  # steps that act in an episode
                roll["obs"].append(obs)
                roll["fresh"].append(fresh)
                _, reward, term, trunc, info = env.step(acts.cpu().numpy())
                obs = to_obs(env.observe_stacked(), device)
                done = torch.as_tensor(term | trunc, device=device)
                roll["acts"].append(acts)
                roll["expert"].append(expert)
                roll["old"].append(joint_log_prob(out.joint_log_probs, acts))
                roll["values"].append(out.value)
                roll["rewards"].append(torch.as_tensor(reward, dtype=torch.float32, device=device) * alive)
                roll["dones"].append(done | ~alive)
                roll["own"].append(~use_expert & alive)
                roll["alive"].append(alive)
                # The step after an episode ended begins the next one (NEXT_STEP autoreset).
                fresh = done | ~alive
                for i in np.nonzero(term | trunc)[0]:
                    episodes += 1
                    recent.append(
                        {"success": float(info["success"][i]), "length": int(info["episode_length"][i])}
                    )
                steps += n
            last = model(obs, state, reset=fresh).value
        adv, ret = _gae(roll["rewards"], roll["values"], roll["dones"], last, args.gamma, args.lam)
        own = torch.stack(roll["own"]).float()
        alive_f = torch.stack(roll["alive"]).float()
        old = torch.stack(roll["old"])
        for _ in range(args.epochs):
            st = first
            logps, values, ents, imit, cords = [], [], [], [], []
            for t in range(args.rollout):
                out = model(roll["obs"][t], st, reset=roll["fresh"][t])
                st = out.state
                logps.append(joint_log_prob(out.joint_log_probs, roll["acts"][t]))
                imit.append(-joint_log_prob(out.joint_log_probs, roll["expert"][t]))
                values.append(out.value)
                ents.append(joint_entropy(out.joint_log_probs))
                if args.task == "furnmove" and args.cordial:
                    cords.append(cordial_loss(out.joint_log_probs, ind_valid, joint_valid))
            ratio = torch.exp(torch.stack(logps) - old)
            clipped = torch.clamp(ratio, 1 - args.clip, 1 + args.clip)
            pg = -(torch.minimum(ratio * adv, clipped * adv) * own).sum() / own.sum().clamp(min=1.0)
            vloss = 0.5 * (((torch.stack(values) - ret) ** 2) * alive_f).sum() / alive_f.sum().clamp(min=1.0)
            ent = torch.stack(ents).mean()
            bc = (torch.stack(imit) * alive_f).sum() / alive_f.sum().clamp(min=1.0)
            loss = pg + args.value_coef * vloss - args.entropy * ent + args.imitation * bc
            cord = torch.stack(cords).mean() if cords else torch.zeros((), device=device)
            if cords:
                loss = loss + cordial_weight(episodes) * cord
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        if bar is not None:
            bar.update(n * args.rollout)
        if recent:
            sr = float(np.mean([r["success"] for r in recent[-100:]]))
            ln = float(np.mean([r["length"] for r in recent[-100:]]))
            writer.add_scalar("rollout/success", sr, steps)
            writer.add_scalar("rollout/ep_len_mean", ln, steps)
            if bar is not None:
                bar.set_postfix(success=f"{sr:.2f}", p_exp=f"{p_expert:.2f}", ep=episodes)
        writer.add_scalar("train/policy_loss", float(pg.detach()), steps)
        writer.add_scalar("train/value_loss", float(vloss.detach()), steps)
        writer.add_scalar("train/entropy", float(ent.detach()), steps)
        writer.add_scalar("train/imitation", float(bc.detach()), steps)
        writer.add_scalar("train/cordial", float(cord.detach()), steps)
        writer.add_scalar("train/expert_probability", p_expert, steps)
        writer.add_scalar("time/fps", (steps - s0) / max(1e-6, time.time() - t0), steps)
        if steps >= next_ckpt or termination_requested():
            path = save_checkpoint(run, run.checkpoint(steps), model, opt, _state(steps, episodes, rng), args)
            next_ckpt = run.next_checkpoint(steps, args.checkpoint_every)
            if termination_requested():
                if bar is not None:
                    bar.close()
                writer.close()
                exit_terminated(path)
    if bar is not None:
        bar.close()
    writer.close()
    final = save_checkpoint(run, run.final, model, opt, _state(steps, episodes, rng), args)
    _write_curve(run)
    write_json_atomic(
        run.root / "train_summary.json",
        {
            "steps": steps,
            "episodes": episodes,
            "seconds": round(time.time() - t0, 1),
            "success_last_100": float(np.mean([r["success"] for r in recent[-100:]])) if recent else None,
        },
        indent=1,
    )
    return final


def _state(steps: int, episodes: int, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "steps": steps,
        "episodes": episodes,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }


def _gae(
    rewards: list[torch.Tensor],
    values: list[torch.Tensor],
    dones: list[torch.Tensor],
    last: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) (T, N); values detached for the targets."""
    t_len = len(rewards)
    adv = torch.zeros(t_len, *last.shape, device=last.device)
    gae = torch.zeros_like(last)
    nxt = last
    for t in reversed(range(t_len)):
        notdone = (~dones[t]).float()
        v = values[t].detach()
        delta = rewards[t] + gamma * nxt * notdone - v
        gae = delta + gamma * lam * notdone * gae
        adv[t] = gae
        nxt = v
    ret = adv + torch.stack([v.detach() for v in values])
    return adv, ret


def _write_curve(run: RunDir) -> None:
    try:
        from thorgym.rundir import write_learning_curve

        write_learning_curve(run.root)
    except Exception as e:  # a curve is a convenience; never lose a finished run over it
        print(f"learning curve not written: {e}")


__all__ = ["FurnitureTrainArgs", "load_model", "model_config", "train_furniture"]
