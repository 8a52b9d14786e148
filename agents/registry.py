"""The tasks and agents `thorgym train` and `thorgym eval` know, one entry per (task, agent).

A :class:`TaskSpec` says how `thorgym train TASK` turns the command line's flags
(:class:`~thorgym.agents.train_args.TrainOptions`) into the typed arguments of that task's
trainers, and which agent trains when ``--agent`` is not given. An :class:`AgentSpec` is one
agent on one task: how it trains from those arguments, and how it is evaluated — either as a
batched :class:`~thorgym.agents.policy.Policy` its task's evaluation loop drives (``load_policy``:
ObjectNav, whose loop is ``thorgym.eval.objectnav``), or by its own evaluator (``evaluate``, from
the task's typed evaluation arguments: IQA, FurnLift, FurnMove, whose loops live with their
agents). The same agent name may serve several tasks (``random``) with one entry per task.

Each entry names its implementation lazily (the import happens inside the function), so
importing the registry imports neither torch nor Stable-Baselines3. Add a task with
:func:`register_task` and its agents with :func:`register_agent`; look them up with
:func:`get_task` and :func:`get_agent` (unknown names are ValueErrors listing the known ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .train_args import DEFAULT_AGENT, TrainArgs, TrainOptions, objectnav_train_args

if TYPE_CHECKING:
    from .forces.evaluate import ForcesEvalArgs
    from .forces.trainer import ForcesTrainArgs
    from .himn.evaluate import IQAEvalArgs
    from .himn.trainer import IQATrainArgs
    from .policy import EvalContext, Policy
    from .tbone.evaluate import FurnitureEvalArgs
    from .tbone.trainer import FurnitureTrainArgs

__all__ = [
    "DEFAULT_AGENT", "AgentSpec", "TaskSpec", "agent_names", "get_agent", "get_task", "register_agent",
    "register_task", "task_names",
]  # fmt: skip

TrainT = TypeVar("TrainT")  # a task's typed training arguments (a dataclass)
EvalT = TypeVar("EvalT")  # a task's typed evaluation arguments (a dataclass)
Metrics = Mapping[str, Any]


@dataclass(frozen=True)
class TaskSpec(Generic[TrainT]):
    """One task of `thorgym train`: ``train_args`` builds (and validates) its trainers' typed
    arguments from the CLI's flags, ``default_agent`` trains without ``--agent``.
    ``parallel_seeds``: ``--seeds`` trains each seed in its own process (``thorgym.train.
    train_seeds``, which speaks ObjectNav's :class:`TrainArgs`); otherwise the seeds train one
    after the other in this process, each into ``OUT/seed_<s>``."""

    name: str
    description: str
    default_agent: str
    train_args: Callable[[TrainOptions], TrainT]
    parallel_seeds: bool = False


@dataclass(frozen=True)
class AgentSpec(Generic[TrainT, EvalT]):
    """One agent on one task.

    ``train`` runs `thorgym train` from the task's typed arguments (None: nothing to train, an
    evaluation baseline) and returns the final checkpoint. Evaluation is ``load_policy`` (a
    checkpoint file, or None for agents without one, to a batched policy the task's evaluation
    loop drives) or ``evaluate`` (the agent's own evaluator, from the task's typed evaluation
    arguments, returning the metrics it wrote). ``checkpoint_suffixes`` are the checkpoint formats
    it reads, the first being the one its trainer writes; a run directory resolves to one of them.
    """

    name: str
    description: str
    train: Callable[[TrainT], Path] | None
    load_policy: Callable[[Path | None, EvalContext], Policy] | None = None
    checkpoint_suffixes: tuple[str, ...] = ()
    needs_checkpoint: bool = True
    task: str = "objectnav"
    evaluate: Callable[[EvalT], Metrics] | None = None

    @property
    def checkpoint_suffix(self) -> str | None:
        """The format its trainer writes (None for agents without checkpoints)."""
        return self.checkpoint_suffixes[0] if self.checkpoint_suffixes else None

    def run_evaluation(self, args: EvalT) -> Metrics:
        """Evaluate with the agent's own evaluator (``evaluate``); agents evaluated by their
        task's loop through ``load_policy`` have none (a ValueError)."""
        if self.evaluate is None:
            raise ValueError(f"agent {self.name!r} of {self.task} has no evaluator: its task evaluates it")
        return self.evaluate(args)


_TASKS: dict[str, TaskSpec[Any]] = {}
_AGENTS: dict[tuple[str, str], AgentSpec[Any, Any]] = {}


def register_task(spec: TaskSpec[TrainT]) -> TaskSpec[TrainT]:
    """Add a task of `thorgym train`; a second task of the same name is an error."""
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    _TASKS[spec.name] = spec
    return spec


def register_agent(spec: AgentSpec[TrainT, EvalT]) -> AgentSpec[TrainT, EvalT]:
    """Add ``spec`` for its task; a second agent of the same name on that task is an error, so is
    an agent that can be neither loaded nor evaluated, or needs a checkpoint of no format."""
    key = (spec.task, spec.name)
    if key in _AGENTS:
        raise ValueError(f"agent {spec.name!r} is already registered for {spec.task}; pick another name")
    if spec.load_policy is None and spec.evaluate is None:
        raise ValueError(f"agent {spec.name!r} ({spec.task}) needs load_policy or evaluate")
    if spec.needs_checkpoint and not spec.checkpoint_suffixes:
        raise ValueError(f"agent {spec.name!r} needs a checkpoint but names no checkpoint_suffixes")
    _AGENTS[key] = spec
    return spec


def task_names() -> list[str]:
    """Tasks `thorgym train` knows, in registration order."""
    return list(_TASKS)


def get_task(name: str) -> TaskSpec[Any]:
    """The task registered as ``name``; unknown names are a ValueError listing the known ones."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}: choose one of {', '.join(task_names())}") from None


def agent_names(task: str = "objectnav") -> list[str]:
    """Agents registered for ``task``, in registration order."""
    return [name for t, name in _AGENTS if t == task]


def get_agent(name: str, task: str = "objectnav") -> AgentSpec[Any, Any]:
    """The agent ``name`` of ``task``; an unknown task or agent is a ValueError listing the known
    ones (the agents of that task)."""
    try:
        return _AGENTS[(task, name)]
    except KeyError:
        pass
    known = agent_names(task)
    if not known:
        tasks = sorted({t for t, _ in _AGENTS})
        raise ValueError(f"unknown task {task!r}: agents are registered for {', '.join(tasks)}")
    raise ValueError(f"unknown agent {name!r} for {task}: choose one of {', '.join(known)}")


# -- ObjectNav (implementations imported on use) ----------------------------------------------


def _train_sb3_recurrent(args: TrainArgs) -> Path:
    from . import sb3_ppo

    return sb3_ppo.train(args, recurrent=True)


def _train_sb3_ff(args: TrainArgs) -> Path:
    from . import sb3_ppo

    return sb3_ppo.train(args, recurrent=False)


def _load_sb3(path: Path | None, ctx: EvalContext) -> Policy:
    from . import sb3_ppo

    return sb3_ppo.load_policy(path, ctx)


def _train_ppo(args: TrainArgs) -> Path:
    from . import batched_ppo

    return batched_ppo.train(args)


def _load_ppo(path: Path | None, ctx: EvalContext) -> Policy:
    from . import batched_ppo

    return batched_ppo.load_policy(path, ctx)


def _train_savn(args: TrainArgs) -> Path:
    from .savn.trainer import train_savn

    return train_savn(args)


def _load_savn(path: Path | None, ctx: EvalContext) -> Policy:
    from .savn.policy import load_savn

    return load_savn(path, ctx)


def _load_nonadaptive(path: Path | None, ctx: EvalContext) -> Policy:
    from .savn.policy import load_nonadaptive

    return load_nonadaptive(path, ctx)


def _load_random(path: Path | None, ctx: EvalContext) -> Policy:
    from .baselines import load_random

    return load_random(path, ctx)


def _load_oracle(path: Path | None, ctx: EvalContext) -> Policy:
    from .baselines import load_oracle

    return load_oracle(path, ctx)


register_task(
    TaskSpec(
        "objectnav", "SAVN-style object navigation", DEFAULT_AGENT, objectnav_train_args, parallel_seeds=True
    )
)
register_agent(
    AgentSpec(
        "ppo-sb3",
        "recurrent PPO (sb3-contrib RecurrentPPO, LSTM 256)",
        _train_sb3_recurrent,
        _load_sb3,
        (".zip",),
    )
)
register_agent(
    AgentSpec("ppo-ff", "feed-forward PPO (Stable-Baselines3)", _train_sb3_ff, _load_sb3, (".zip",))
)
register_agent(
    AgentSpec(
        "ppo",
        "batched recurrent PPO (thorgym.agents.ppo; ppo-sb3 where that is not built; loads .zip via SB3)",
        _train_ppo,
        _load_ppo,
        (".pt", ".zip"),
    )
)
register_agent(
    AgentSpec(
        "savn",
        "SAVN meta-RL with test-time adaptation (Wortsman et al. 2019)",
        _train_savn,
        _load_savn,
        (".pt",),
    )
)
register_agent(
    AgentSpec(
        "nonadaptive",
        "the SAVN network without adaptation (A3C)",
        _train_savn,
        _load_nonadaptive,
        (".pt",),
    )
)
register_agent(AgentSpec("random", "uniform random actions", None, _load_random, needs_checkpoint=False))
register_agent(
    AgentSpec("oracle", "shortest path to the target, then Done", None, _load_oracle, needs_checkpoint=False)
)


# -- IQA -----------------------------------------------------------------------------------------


def _iqa_train_args(o: TrainOptions) -> IQATrainArgs:
    from .himn.trainer import IQATrainArgs

    return IQATrainArgs.from_options(o)


def _train_iqa(args: IQATrainArgs) -> Path:
    from .himn.trainer import train_iqa

    return train_iqa(args)


def _evaluate_iqa(args: IQAEvalArgs) -> Metrics:
    from .himn.evaluate import run_iqa_eval

    return run_iqa_eval(args)


register_task(TaskSpec("iqa", "interactive question answering (IQUAD V1)", "ppo", _iqa_train_args))
register_agent(
    AgentSpec(
        "himn",
        "HIMN: semantic map, answerer, hierarchical planner trained with PPO (Gordon et al. 2018)",
        _train_iqa,
        checkpoint_suffixes=(".pt",),
        task="iqa",
        evaluate=_evaluate_iqa,
    )
)
register_agent(
    AgentSpec(
        "ppo",
        "flat PPO over the 11 primitive actions from RGB (HIMN's baseline)",
        _train_iqa,
        checkpoint_suffixes=(".pt",),
        task="iqa",
        evaluate=_evaluate_iqa,
    )
)
register_agent(
    AgentSpec(
        "random",
        "uniform over the 11 primitive actions",
        None,
        needs_checkpoint=False,
        task="iqa",
        evaluate=_evaluate_iqa,
    )  # fmt: skip
)


# -- FurnLift and FurnMove (the two-body tasks) ----------------------------------------------------


def _furniture_train_args(o: TrainOptions) -> FurnitureTrainArgs:
    from .tbone.trainer import FurnitureTrainArgs

    return FurnitureTrainArgs.from_options(o)


def _train_furniture(args: FurnitureTrainArgs) -> Path:
    from .tbone.trainer import train_furniture

    return train_furniture(args)


def _evaluate_furniture(args: FurnitureEvalArgs) -> Metrics:
    from .tbone.evaluate import run_furniture_eval

    return run_furniture_eval(args)


for _task, _what in (("furnlift", "lift a television together"), ("furnmove", "move a television together")):
    register_task(TaskSpec(_task, f"two agents {_what} (Two Body Problem)", "tbone", _furniture_train_args))
    register_agent(
        AgentSpec(
            "tbone",
            "communicating two-body agents (TBONE; marginal, central or SYNC policies)",
            _train_furniture,
            checkpoint_suffixes=(".pt",),
            task=_task,
            evaluate=_evaluate_furniture,
        )
    )
    register_agent(
        AgentSpec(
            "random",
            "uniform joint actions",
            None,
            needs_checkpoint=False,
            task=_task,
            evaluate=_evaluate_furniture,
        )  # fmt: skip
    )
    register_agent(
        AgentSpec(
            "expert",
            "the task's shortest-path expert (oracle)",
            None,
            needs_checkpoint=False,
            task=_task,
            evaluate=_evaluate_furniture,
        )  # fmt: skip
    )


# -- forces ("What happens if…") ------------------------------------------------------------------


def _forces_train_args(o: TrainOptions) -> ForcesTrainArgs:
    from .forces.trainer import ForcesTrainArgs

    return ForcesTrainArgs.from_options(o)


def _train_forces(args: ForcesTrainArgs) -> Path:
    from .forces.trainer import train_forces

    return train_forces(args)


def _evaluate_forces(args: ForcesEvalArgs) -> Metrics:
    from .forces.evaluate import run_forces_eval

    return run_forces_eval(args)


register_task(
    TaskSpec(
        "forces", "predict what a push does to an object (What happens if…)", "model", _forces_train_args
    )
)
register_agent(
    AgentSpec(
        "model",
        "CNN + RNN force predictor: image, mask, force in; 6 steps of 18 classes out (Mottaghi et al. 2016)",
        _train_forces,
        checkpoint_suffixes=(".pt",),
        task="forces",
        evaluate=_evaluate_forces,
    )
)
for _name, _what in (
    ("most-frequent", "the most frequent moving sequence of the train split"),
    ("nearest-neighbour", "the label of the nearest train sample (same object type; force and mask)"),
    ("random", "uniform over the 18 classes at each step"),
):
    register_agent(
        AgentSpec(_name, _what, None, needs_checkpoint=False, task="forces", evaluate=_evaluate_forces)
    )
