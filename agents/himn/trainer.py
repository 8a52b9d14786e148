"""``thorgym train iqa``: HIMN (answerer pretraining, then the planner with PPO) and the flat baseline.

HIMN (``--agent himn``), as in Gordon et al. (CVPR 2018) with PPO in place of A3C:

1. The answerer is pretrained with supervision on semantic maps built with ground-truth
   perception while an exploring planner (uniform over the valid high-level actions but Answer)
   walks the train scenes: snapshots of the map every few decisions, labelled with the
   question's answer.
2. The planner (GRU 64, 32 masked high-level actions, γ = 0.99 per decision) is trained with
   PPO (clipped, GAE λ 0.95) on the sum of the primitive rewards of each decision, with the
   answerer frozen. The navigator executes its goals.

The flat baseline (``--agent ppo``) is the same PPO over IQA's 11 primitive actions from RGB.
Checkpoints (``OUT/checkpoints/ckpt_<steps>.pt``, atomic) hold networks, optimiser, step count
and random states; ``--resume`` continues from the newest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from thorgym.agents.train_args import TrainOptions
from thorgym.rundir import (
    RunDir,
    exit_terminated,
    load_torch_checkpoint,
    stop_on_sigterm,
    termination_requested,
)
from thorgym.tasks import iqa

from .driver import IQADriver
from .models import ANSWER, NUM_HIGH_LEVEL, Answerer, FlatPolicy, Planner

AGENTS = ("himn", "ppo")


@dataclass
class IQATrainArgs:
    """Arguments of ``thorgym train iqa`` (defaults: the CPU budget of RESULTS.md)."""

    agent: str = "himn"
    questions: str = ""  # train CSV (``thorgym data iqa``)
    out: Path = Path("runs/iqa")
    envs: int = 16
    steps: int = 150_000  # primitive environment steps for the planner / flat policy
    size: int = 64  # frame size (square)
    seed: int = 0
    lr: float = 3e-4
    rollout: int = 64  # ticks per update
    epochs: int = 4
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    entropy: float = 0.01
    max_steps: int = iqa.MAX_STEPS
    answerer_steps: int = 30_000  # primitive steps of exploration for answerer data
    answerer_epochs: int = 8
    detector: str | None = None  # checkpoint of a learned detector (default: ground-truth classes)
    resume: bool = False
    checkpoint_every: int = 20_000
    device: str = "cpu"
    progress: bool = True

    @classmethod
    def from_options(cls, o: TrainOptions) -> IQATrainArgs:
        """The arguments of `thorgym train iqa` from its flags (unset ones: these defaults)."""
        explicit = o.given("envs", "steps", "size", "lr", "rollout", "epochs")
        args = cls(
            agent=o.agent, questions=o.questions or "", out=o.out, seed=o.seed, detector=o.detector,
            resume=o.resume, checkpoint_every=o.checkpoint_every, progress=o.progress, **explicit,
        )  # fmt: skip
        args.validate()
        return args

    def validate(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"unknown IQA agent {self.agent!r}; trainable: {list(AGENTS)}")
        if not self.questions:
            raise ValueError(
                "IQA training needs --questions DIR/train.csv (make one with `thorgym data iqa`)"
            )
        for k in ("envs", "steps", "size", "rollout", "epochs"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"--{k} must be positive, got {getattr(self, k)}")


def make_venv(questions: list[iqa.Question], envs: int, size: int, max_steps: int, *, classes: bool,
              sample: bool) -> Any:  # fmt: skip
    from thorgym.envs.iqa import IQAVectorEnv

    return IQAVectorEnv(
        num_envs=envs, split="train" if sample else "seen", questions=questions, width=size, height=size,
        depth=True, classes=classes, max_steps=max_steps, sample=sample, autoreset_mode="SameStep",
    )  # fmt: skip


def build_policy(agent: str) -> torch.nn.Module:
    return Planner() if agent == "himn" else FlatPolicy()


# -- answerer pretraining --------------------------------------------------------------------------
class _Explorer(torch.nn.Module):
    """Uniform over the valid high-level actions except Answer (for answerer data)."""

    hidden = 1

    def forward(self, crop, question, horizon, h, mask):  # noqa: D401 - the policy signature
        m = mask.clone()
        m[:, ANSWER] = False
        m[~m.any(1), 25] = True  # RotateLeft is always possible
        logits = torch.zeros(mask.shape).masked_fill(~m, -1e9)
        return logits, torch.zeros(mask.shape[0]), h


def collect_answerer_data(
    questions: list[iqa.Question], steps: int, args: IQATrainArgs, detector: Any = None
) -> dict[str, torch.Tensor]:
    """Map snapshots (every 8 decisions, up to 48 per episode) with their questions and answers."""
    venv = make_venv(questions, args.envs, args.size, args.max_steps, classes=detector is None, sample=True)
    drv = IQADriver(venv, _Explorer(), hierarchical=True, answerer=None, detector=detector, seed=args.seed)
    drv.reset(seed=args.seed)
    maps, qt, obj, cont, ans = [], [], [], [], []
    taken = np.zeros(args.envs, dtype=np.int64)
    while drv.steps < steps:
        drv.tick()
        for i in range(args.envs):
            k = int(drv.decision_count[i])
            if k != taken[i] and k % 8 == 0 and k > 0:
                o = drv.obs
                maps.append(drv.map.map[i].clone().to(torch.uint8))
                qt.append(int(o["question_type"][i]))
                obj.append(int(o["object"][i]))
                cont.append(int(o["container"][i]))
                ans.append(int(venv.task.episodes[i].answer))
            taken[i] = k
            if k >= 48:  # long enough: a new question there
                mask = np.zeros(args.envs, dtype=bool)
                mask[i] = True
                o, _ = venv.reset(options={"reset_mask": mask})
                drv.obs = o
                drv.new_episode(np.array([i]))
                drv.update_map()
                taken[i] = 0
        drv.take_decisions()
    venv.close()
    return {
        "maps": torch.stack(maps), "qtype": torch.tensor(qt), "object": torch.tensor(obj),
        "container": torch.tensor(cont), "answer": torch.tensor(ans),
    }  # fmt: skip


def train_answerer(
    data: dict[str, torch.Tensor], epochs: int, seed: int
) -> tuple[Answerer, dict[str, float]]:
    """Supervised answerer on map snapshots (90 % train, 10 % held out for the reported accuracy)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(data["answer"])
    perm = torch.randperm(n, generator=g)
    cut = max(1, int(0.9 * n))
    tr, va = perm[:cut], perm[cut:]
    model = Answerer()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (data["maps"][idx].float(), data["qtype"][idx], data["object"][idx], data["container"][idx],
                data["answer"][idx])  # fmt: skip

    for _ in range(epochs):
        order = tr[torch.randperm(len(tr), generator=g)]
        for s in range(0, len(order), 64):
            m, q, o, c, a = batch(order[s : s + 64])
            loss = F.cross_entropy(model(m, q, o, c), a)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        m, q, o, c, a = batch(va if len(va) else tr)
        pred = model(m, q, o, c).argmax(-1)
        acc = {t: float((pred[q == k] == a[q == k]).float().mean()) if (q == k).any() else float("nan")
               for k, t in enumerate(iqa.QUESTION_TYPES)}  # fmt: skip
    model.eval()
    return model, {f"answerer_heldout_{k}": 100 * v for k, v in acc.items()} | {"answerer_samples": n}


# -- PPO ---------------------------------------------------------------------------------------------
def ppo_update(
    policy: torch.nn.Module,
    opt: torch.optim.Optimizer,
    decisions: list[list[Any]],
    args: IQATrainArgs,
    hierarchical: bool,
) -> dict[str, float]:
    """One PPO update on the finished decisions of every env (GAE per env, then shuffled batches)."""
    samples, advs, rets = [], [], []
    for seq in decisions:
        gae = 0.0
        out = []
        for d in reversed(seq):
            nv = 0.0 if d.done else d.next_value
            delta = d.reward + args.gamma * nv - d.value
            gae = delta + args.gamma * args.lam * (0.0 if d.done else gae)
            out.append((d, gae, gae + d.value))
        for d, a, r in reversed(out):
            samples.append(d)
            advs.append(a)
            rets.append(r)
    if not samples:
        return {}
    adv = torch.tensor(advs, dtype=torch.float32)
    ret = torch.tensor(rets, dtype=torch.float32)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8) if len(adv) > 1 else adv
    keys = list(samples[0].inputs)
    stacked = {k: torch.stack([d.inputs[k] for d in samples]) for k in keys}
    acts = torch.tensor([d.action for d in samples])
    old = torch.tensor([d.logp for d in samples])
    first = "crop" if hierarchical else "rgb"
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0}
    n = len(samples)
    mb = max(32, n // 4)
    count = 0
    for _ in range(args.epochs):
        for idx in torch.randperm(n).split(mb):
            logits, value, _ = policy(stacked[first][idx], stacked["question"][idx], stacked["horizon"][idx],
                                      stacked["h"][idx], stacked["mask"][idx])  # fmt: skip
            dist = Categorical(logits=logits)
            lp = dist.log_prob(acts[idx])
            ratio = torch.exp(lp - old[idx])
            pl = -torch.min(
                ratio * adv[idx], torch.clamp(ratio, 1 - args.clip, 1 + args.clip) * adv[idx]
            ).mean()
            vl = F.mse_loss(value, ret[idx])
            ent = dist.entropy().mean()
            loss = pl + 0.5 * vl - args.entropy * ent
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            opt.step()
            stats["policy_loss"] += pl.item()
            stats["value_loss"] += vl.item()
            stats["entropy"] += ent.item()
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()} | {"decisions": n}


# -- the run -----------------------------------------------------------------------------------------
def _save(run: RunDir, path: Path, state: dict[str, Any]) -> Path:
    return run.write_checkpoint(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A thorgym IQA checkpoint (torch, ``weights_only``); a clear error for anything else."""
    hint = "train one with `thorgym train iqa --agent himn|flat`"
    return load_torch_checkpoint(path, "thorgym-iqa-v1", "thorgym IQA", hint)


@stop_on_sigterm()  # SIGTERM: checkpoint after the update in progress, then exit
def train_iqa(args: IQATrainArgs) -> Path:
    """Train an IQA agent; returns the final checkpoint (``OUT/final.pt``)."""
    args.validate()
    torch.set_num_threads(1)
    questions = iqa.read_questions(args.questions)
    run = RunDir(Path(args.out), ".pt")
    run.root.mkdir(parents=True, exist_ok=True)
    run.write_args({k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()})
    detector = None
    if args.detector:
        from .detector import load_detector

        detector = load_detector(args.detector)
    hierarchical = args.agent == "himn"
    torch.manual_seed(args.seed)
    policy = build_policy(args.agent)
    opt = torch.optim.Adam(policy.parameters(), lr=args.lr)
    answerer: Answerer | None = None
    answerer_stats: dict[str, float] = {}
    steps, updates = 0, 0
    log: list[dict[str, Any]] = []
    ckpt = run.resume_from(args.resume)
    if ckpt is not None:
        state = load_checkpoint(ckpt)
        policy.load_state_dict(state["policy"])
        opt.load_state_dict(state["optimizer"])
        steps, updates, log = state["steps"], state["updates"], json.loads(state["log"])
        if state.get("answerer") is not None:
            answerer = Answerer()
            answerer.load_state_dict(state["answerer"])
            answerer.eval()
        answerer_stats = json.loads(state.get("answerer_stats", "{}"))
        print(f"resumed from {ckpt} at {steps} steps")
    t0 = time.time()
    if hierarchical and answerer is None:
        data = collect_answerer_data(questions, args.answerer_steps, args, detector)
        print(f"answerer data: {len(data['answer'])} map snapshots ({time.time() - t0:.0f} s)")
        answerer, answerer_stats = train_answerer(data, args.answerer_epochs, args.seed)
        print(f"answerer: {answerer_stats} ({time.time() - t0:.0f} s)")

    def state() -> dict[str, Any]:
        return {
            "format": "thorgym-iqa-v1", "agent": args.agent, "policy": policy.state_dict(),
            "optimizer": opt.state_dict(), "answerer": None if answerer is None else answerer.state_dict(),
            "steps": steps, "updates": updates, "log": json.dumps(log),
            "answerer_stats": json.dumps(answerer_stats),
            "detector": args.detector or "",
        }  # fmt: skip

    venv = make_venv(questions, args.envs, args.size, args.max_steps, classes=detector is None, sample=True)
    drv = IQADriver(venv, policy, hierarchical=hierarchical, answerer=answerer, detector=detector,
                    seed=args.seed + 1000 * updates)  # fmt: skip
    drv.reset(seed=args.seed + 7919 * updates)
    writer = run.tb_writer(f"start_{steps}")
    next_ckpt = run.next_checkpoint(steps, args.checkpoint_every)
    from tqdm import tqdm

    bar = tqdm(
        total=args.steps, initial=steps, unit="step", disable=not args.progress, desc=f"iqa {args.agent}"
    )
    while steps < args.steps:
        before = drv.steps
        for _ in range(args.rollout):
            drv.tick()
        steps += drv.steps - before
        bar.update(drv.steps - before)
        stats = ppo_update(policy, opt, drv.take_decisions(), args, hierarchical)
        updates += 1
        recs, drv.records = drv.records, []
        if recs:
            row = {"steps": steps, "episodes": len(recs),
                   "accuracy": 100 * float(np.mean([r["correct"] for r in recs])),
                   "answered": 100 * float(np.mean([r["given_answer"] >= 0 for r in recs])),
                   "episode_length": float(np.mean([r["episode_length"] for r in recs]))} | stats  # fmt: skip
            log.append(row)
            for k, v in row.items():
                if isinstance(v, int | float) and k != "steps":
                    writer.add_scalar(f"iqa/{k}", v, steps)
        if steps >= next_ckpt or termination_requested():
            path = _save(run, run.checkpoint(steps), state())
            next_ckpt = run.next_checkpoint(steps, args.checkpoint_every)
            if termination_requested():
                bar.close()
                writer.close()
                venv.close()
                exit_terminated(path)
    bar.close()
    writer.close()
    venv.close()
    final = _save(run, run.final, state())
    _save(run, run.checkpoint(steps), state())
    _write_curve(run, log)
    return final


def _write_curve(run: RunDir, log: list[dict[str, Any]]) -> None:
    if not log:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from thorgym.atomic import atomic_path

    s = np.array([r["steps"] for r in log])
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    k = max(1, len(log) // 20)
    for key, a in (("accuracy", ax[0]), ("episode_length", ax[1])):
        v = np.convolve([r[key] for r in log], np.ones(k) / k, mode="valid")
        a.plot(s[k - 1 :], v)
        a.set_xlabel("environment steps")
        a.set_title(f"train {key} (moving mean of {k} updates)")
    fig.tight_layout()
    with atomic_path(run.curve) as p:
        fig.savefig(p, format="png")
    plt.close(fig)


__all__ = ["AGENTS", "IQATrainArgs", "load_checkpoint", "train_iqa", "NUM_HIGH_LEVEL"]
