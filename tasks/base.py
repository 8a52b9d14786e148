"""The task protocol: what every thorgym task implements once, batched over N worlds.

A task holds its rules and nothing else. An environment adapter (``thorgym.envs.task_env``) owns
the Gymnasium plumbing (seeding, autoreset, fixed episode lists, info batching) and drives the
task over a backend's N worlds; a single environment is N = 1 of the same code path.

The life of a batch, as the adapters call it::

    task.bind(worlds)                         # once: the batched backend the task drives
    task.begin(i, episode)                    # put world i at the start of an episode
    obs = task.observe()                      # observations of all N worlds (dict of arrays)
    out = task.step(actions, live)            # apply (N,) actions where live; rewards, ends
    obs = task.observe()
    task.info()                               # per-world info arrays (the episode so far)
    task.record(i)                            # the per-episode record once world i's episode ended
    task.truncate(i)                          # world i's backend was restarted: end its episode

``summarize(records)`` turns per-episode records into the task's measures (success, SPL, …).
Tasks see a backend only through the worlds object they are bound to (its public methods),
never through simulator internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces


@dataclass
class StepResult:
    """What one batched step of a task returns: (N,) arrays."""

    reward: np.ndarray  # float64
    terminated: np.ndarray  # bool: the task's own end (e.g. Done)
    truncated: np.ndarray  # bool: a step limit (or a backend restart)
    success: np.ndarray  # bool: the episode succeeded on this step


@runtime_checkable
class Task(Protocol):
    """One task's rules, batched over the N worlds it is bound to."""

    name: str
    action_names: tuple[str, ...]

    @property
    def observation_space(self) -> spaces.Dict: ...

    @property
    def action_space(self) -> spaces.Space: ...

    @property
    def info_keys(self) -> tuple[str, ...]: ...

    def bind(self, worlds: Any) -> None: ...

    def sample_episode(self, rng: np.random.Generator, options: Mapping[str, Any]) -> Any: ...

    def episode_from_dict(self, d: Mapping[str, Any]) -> Any: ...

    def begin(self, i: int, episode: Any) -> None: ...

    def step(self, actions: np.ndarray, live: np.ndarray) -> StepResult: ...

    def truncate(self, i: int) -> None: ...

    def observe(self) -> dict[str, np.ndarray]: ...

    def info(self) -> dict[str, np.ndarray]: ...

    def record(self, i: int) -> dict[str, Any]: ...

    def summarize(self, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WorldsSpec:
    """What a task asks of its backend, as data: the generic env factory
    (``thorgym.envs.task_env.make_env``) builds the worlds from it, so a task needs no env module.

    ``sensors`` are the frames rendered each step ("rgb", "depth", "classes": per-pixel index
    in ``classes`` of the object type seen there, from instance segmentation); the rest are the simulator's
    settings (AI2-THOR's names: gridSize, rotateStepDegrees, fieldOfView, visibilityDistance,
    agentCount, makeAgentsVisible). ``scene`` is where every world starts (episodes load their
    own).
    """

    scene: str
    width: int
    height: int
    sensors: tuple[str, ...] = ("rgb",)
    grid_size: float = 0.25
    rotate_step_degrees: float = 90.0
    field_of_view: float = 90.0
    visibility_distance: float = 1.5
    agents: int = 1
    agents_visible: bool = True  # multi-agent worlds: each agent is drawn in the others' views
    # the "classes" sensor: per pixel, the index in this tuple of the type of the object seen
    # there (from instance segmentation), 0 (the first entry: background) for any other type
    classes: tuple[str, ...] = ()
    # static scenes as lookup tables instead of a renderer (then sensors: () or ("features",))
    pose_tables: PoseTables | None = None


@dataclass(frozen=True)
class PoseTables:
    """Worlds of static scenes as lookup tables instead of a renderer (``thorgym.envs.cached.
    PoseTableWorlds``: no rendering): each scene's pose graph (transitions, target visibility)
    and, for the "features" sensor, a frozen backbone's feature of every pose's frame — given by
    ``features_fn`` (scene → (poses, D) array), else computed with ``backbone`` (registry name;
    weights ``backbone_ckpt``, default its seed-0 initialisation) at ``size`` × ``size``, pooled
    to ``grid`` × ``grid`` and cached per scene under ``cache_root`` (default
    ``$THORGYM_CACHE/features``)."""

    scenes: tuple[str, ...]
    backbone: str = "cnn_small"
    backbone_ckpt: str | None = None
    size: int = 64
    grid: int = 3
    cache_root: str | None = None
    features_fn: Callable[[str], Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EpisodeFile:
    """A shipped episode set named by its file, ``thorgym/datasets/data/<name>.json.gz`` (or
    ``.csv``; e.g. ``"furnlift_test"``), or the path of a ``.json`` / ``.json.gz`` episode file:
    the task names it, the env factory reads it through the datasets layer, which owns (and
    generates) those files."""

    name: str


@dataclass(frozen=True)
class TextEncoder:
    """A text encoder named by the task and built by the env factory through the datasets layer
    (which owns the word vectors): ``"question_tokens"`` maps a text to its (16, 50) GloVe 6B
    50-d word vectors (``thorgym.datasets.iqa.question_tokens``)."""

    name: str


@dataclass(frozen=True)
class EnvSetup:
    """A task ready to run: the task object, the worlds it needs, and the fixed episodes it plays
    in order — episodes (or dicts), a shipped :class:`EpisodeFile`, or None (sampled).

    ``data`` names what the task reads through the datasets layer (shipped :class:`EpisodeFile`
    sets, :class:`TextEncoder` s): the factory resolves each value (an episode file to its list of
    dicts, an encoder to a function) and hands the dict to ``task.provide(data)`` before the
    adapters bind the task."""

    task: Task
    worlds: WorldsSpec
    episodes: Sequence[Any] | EpisodeFile | None = None
    data: Mapping[str, EpisodeFile | TextEncoder] | None = None


@dataclass(frozen=True)
class ObjectState:
    """What a task reads about one object of a world (AI2-THOR metadata: ``objectId``,
    ``objectType``, ``parentReceptacles[0]``, ``openable``, ``isOpen``)."""

    object_id: str
    object_type: str
    parent: str | None  # objectId of the receptacle it is in/on
    openable: bool
    is_open: bool


@runtime_checkable
class EnvTask(Protocol):
    """A task class the generic env factory can build from a registration line's keyword
    arguments alone: ``env_setup(num_worlds, **kwargs)`` validates the task's own arguments and
    returns the task, its worlds and its episodes. The backend's arguments (``backend``,
    ``device``, ``render_mode``, ...) are the factory's. Its docstring is the Gymnasium
    documentation of the environments made from it."""

    @classmethod
    def env_setup(cls, num_worlds: int, **kwargs: Any) -> EnvSetup: ...


MAX_DEPTH = 10.0  # depth observations are clipped to [0, MAX_DEPTH] metres


def frame_spaces(sensors: Sequence[str], frame_shape: tuple[int, int]) -> dict[str, spaces.Space]:
    """The spaces of the egocentric frame observations every task shares: ``rgb`` (H, W, 3) uint8
    and ``depth`` (H, W, 1) float32 metres, those of them in ``sensors``."""
    h, w = frame_shape
    d: dict[str, spaces.Space] = {}
    if "rgb" in sensors:
        d["rgb"] = spaces.Box(0, 255, (h, w, 3), np.uint8)
    if "depth" in sensors:
        d["depth"] = spaces.Box(0.0, MAX_DEPTH, (h, w, 1), np.float32)
    return d


def frame_observations(frames: Mapping[str, np.ndarray], sensors: Sequence[str]) -> dict[str, np.ndarray]:
    """Batched ``rgb`` and ``depth`` observations (depth clipped, with a channel axis) from the
    worlds' frames, those of them in ``sensors``."""
    obs: dict[str, np.ndarray] = {}
    if "rgb" in sensors:
        obs["rgb"] = frames["rgb"]
    if "depth" in sensors:
        obs["depth"] = np.clip(frames["depth"], 0.0, MAX_DEPTH).astype(np.float32)[..., None]
    return obs


def batch_indices(mask: np.ndarray | Sequence[bool]) -> np.ndarray:
    """Indices where a (N,) mask is True."""
    return np.nonzero(np.asarray(mask, dtype=bool))[0]
