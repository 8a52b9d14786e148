"""ObjectNav in SAVN's setting (Wortsman et al., CVPR 2019): find an object of a given type.

The task, independent of any backend:

- Targets per room type (:data:`TARGETS`); :data:`TARGET_TYPES` is their union, in a fixed order,
  and is what an environment's ``target`` observation indexes.
- Actions (:data:`ACTIONS`): MoveAhead, RotateLeft, RotateRight (45°), LookUp, LookDown, Done.
  The camera horizon stays in {0, 30}: LookUp at 0 and LookDown at 30 fail (state unchanged).
- Success: ``Done`` while an instance of the target type is visible (the backend's visibility:
  within 1.5 m). ``Done`` always ends the episode. Reward +5 on success (replacing the step
  penalty, as SAVN's code does), −0.01 on every other step. Step limits as SAVN's evaluation:
  100 steps, 200 in living rooms (:data:`DEFAULT_MAX_STEPS`).
- SPL = success × L_opt / max(L_agent, L_opt); L_opt is the breadth-first-search distance in the
  pose graph (reachable positions × 8 headings × 2 horizons, edges = the 5 movement actions) to
  the nearest pose from which the target is visible, plus 1 for Done. L_agent counts the actions
  the agent took, Done included.

Pose graphs come from :func:`build_pose_graph` on the built-in simulator (exact: the same
collision test and visibility rule as :class:`thorgym.sim.BatchedSimulator`, see there) or from
:func:`pose_graph_from_controller` for any AI2-THOR-style controller (Teleport +
``metadata["objects"][i]["visible"]``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from thorgym.atomic import atomic_writer
from thorgym.cache import cache_root
from thorgym.sim.scenes import ROOM_TYPES, parse_scene, room_type, scenes_for

from .base import MAX_DEPTH as MAX_DEPTH  # re-exported: envs read it here
from .base import EnvSetup, EpisodeFile, PoseTables, StepResult, WorldsSpec, frame_observations, frame_spaces

# -- the task's constants ------------------------------------------------------------------------
TARGETS: dict[str, tuple[str, ...]] = {
    "kitchen": ("Toaster", "Microwave", "Fridge", "CoffeeMaker", "GarbageCan", "Box", "Bowl"),
    "living_room": ("Pillow", "Laptop", "Television", "GarbageCan", "Box", "Bowl"),
    "bedroom": ("HousePlant", "Lamp", "Book", "AlarmClock"),
    "bathroom": ("Sink", "ToiletPaper", "SoapBottle", "LightSwitch"),
}
# Union of all room types' targets, first occurrence order: the `target` observation's values.
TARGET_TYPES: tuple[str, ...] = tuple(dict.fromkeys(t for r in ROOM_TYPES for t in TARGETS[r]))
TARGET_INDEX: dict[str, int] = {t: i for i, t in enumerate(TARGET_TYPES)}
# GloVe 6B 50-d vectors of TARGET_TYPES (mean over a type's words), shipped with the task so that
# the task builds without the datasets layer; tests check it equals thorgym.datasets.
# objectnav_embeddings.embed_types(TARGET_TYPES), which wrote it.
TARGET_EMBEDDINGS_FILE = Path(__file__).parent / "data" / "objectnav_target_embeddings.npy"


@functools.cache
def target_embeddings() -> np.ndarray:
    """(len(TARGET_TYPES), 50) float32 GloVe embeddings of the target types (read-only)."""
    e = np.load(TARGET_EMBEDDINGS_FILE)
    if e.shape != (len(TARGET_TYPES), 50) or e.dtype != np.float32:
        want = f"({len(TARGET_TYPES)}, 50) float32"
        raise ValueError(f"{TARGET_EMBEDDINGS_FILE}: expected {want}, got {e.shape} {e.dtype}")
    e.flags.writeable = False
    return e


ACTIONS: tuple[str, ...] = ("MoveAhead", "RotateLeft", "RotateRight", "LookUp", "LookDown", "Done")
MOVE_AHEAD, ROTATE_LEFT, ROTATE_RIGHT, LOOK_UP, LOOK_DOWN, DONE = range(6)
NUM_MOVES = 5  # the movement actions (all but Done): the pose graph's edges

ROTATE_DEGREES = 45.0
HEADINGS: tuple[float, ...] = tuple(ROTATE_DEGREES * k for k in range(8))
HORIZONS: tuple[float, ...] = (0.0, 30.0)
POSES_PER_POSITION = len(HEADINGS) * len(HORIZONS)
GRID_SIZE = 0.25
VISIBILITY_DISTANCE = 1.5
FIELD_OF_VIEW = 90.0

SUCCESS_REWARD = 5.0
STEP_PENALTY = -0.01
DEFAULT_MAX_STEPS: dict[str, int] = {
    "kitchen": 100,
    "living_room": 200,
    "bedroom": 100,
    "bathroom": 100,
}
TRAIN_ROLLOUT_STEPS = 30  # SAVN's training rollouts (not an episode limit)


# -- metrics -------------------------------------------------------------------------------------
def spl(success: bool | float, l_opt: float, l_agent: float) -> float:
    """Success weighted by path length: success × L_opt / max(L_agent, L_opt).

    Returns 0.0 for a failed episode or an unknown/invalid ``l_opt`` (≤ 0).
    """
    if not success or l_opt is None or not l_opt > 0:
        return 0.0
    return float(l_opt) / float(max(l_agent, l_opt))


def summarize(episodes: Iterable[Mapping[str, Any]], min_l_opt: int = 5) -> dict[str, float]:
    """Success rate and SPL (in %, as SAVN reports) over all episodes and the L_opt ≥ 5 subset.

    Each episode mapping needs ``success``, ``spl`` and ``l_opt``.
    """
    eps = list(episodes)
    long = [e for e in eps if e["l_opt"] is not None and e["l_opt"] >= min_l_opt]

    def mean(xs: list[Mapping[str, Any]], key: str) -> float:
        return 100.0 * float(np.mean([float(x[key]) for x in xs])) if xs else float("nan")

    return {
        "episodes": len(eps),
        "success": mean(eps, "success"),
        "spl": mean(eps, "spl"),
        f"episodes_l{min_l_opt}": len(long),
        f"success_l{min_l_opt}": mean(long, "success"),
        f"spl_l{min_l_opt}": mean(long, "spl"),
    }


# -- step semantics ------------------------------------------------------------------------------
def max_steps_for(scene_or_room: str, max_steps: int | Mapping[str, int] | None = None) -> int:
    """Episode step limit of a scene (or room type): an int applies everywhere; a mapping is per
    room type (missing room types fall back to :data:`DEFAULT_MAX_STEPS`)."""
    room = scene_or_room if scene_or_room in ROOM_TYPES else room_type(scene_or_room)
    if max_steps is None:
        return DEFAULT_MAX_STEPS[room]
    if isinstance(max_steps, Mapping):
        return int(max_steps.get(room, DEFAULT_MAX_STEPS[room]))
    if int(max_steps) < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    return int(max_steps)


def look_allowed(action: int, horizon: float) -> bool:
    """Whether a movement action is allowed by the horizon rule (LookUp needs 30, LookDown 0)."""
    return not bool(look_blocked(np.array([action]), np.array([horizon]))[0])


@dataclass(frozen=True)
class StepOutcome:
    reward: float
    terminated: bool
    truncated: bool
    success: bool


def step_outcome(action: int, target_visible: bool, steps_taken: int, max_steps: int) -> StepOutcome:
    """Reward and episode end of one step.

    Args:
        action: index into :data:`ACTIONS`.
        target_visible: whether the target is visible in the state the action was taken in
            (``Done`` does not change the state).
        steps_taken: actions taken in the episode including this one.
        max_steps: the episode's step limit.
    """
    one = (np.array([v]) for v in (action, target_visible, steps_taken, max_steps))
    r = step_outcomes(*one)
    return StepOutcome(float(r.reward[0]), bool(r.terminated[0]), bool(r.truncated[0]), bool(r.success[0]))


# -- episodes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    """One ObjectNav episode: scene, target type and start pose (horizon 0)."""

    scene: str
    target: str
    x: float
    z: float
    rotation: float
    horizon: float = 0.0
    l_opt: int | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scene": self.scene,
            "target": self.target,
            "position": {"x": self.x, "z": self.z},
            "rotation": self.rotation,
            "horizon": self.horizon,
            "l_opt": self.l_opt,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Episode:
        if isinstance(d, Episode):
            return d
        pos = d["position"]
        x, z = (pos["x"], pos["z"]) if isinstance(pos, Mapping) else (pos[0], pos[-1])
        if d["target"] not in TARGET_INDEX:
            raise ValueError(f"unknown target {d['target']!r}; targets: {list(TARGET_TYPES)}")
        return cls(
            scene=str(d["scene"]),
            target=str(d["target"]),
            x=float(x),
            z=float(z),
            rotation=float(d.get("rotation", 0.0)),
            horizon=float(d.get("horizon", 0.0)),
            l_opt=None if d.get("l_opt") is None else int(d["l_opt"]),
            id=d.get("id"),
        )


# -- pose graph ----------------------------------------------------------------------------------
def pose_id(position: int, heading: int, horizon: int) -> int:
    """Index of a pose: position index × 16 + heading index (0–7) × 2 + horizon index (0–1)."""
    return (position * len(HEADINGS) + heading) * len(HORIZONS) + horizon


def heading_index(yaw: float) -> int:
    k = round((float(yaw) % 360.0) / ROTATE_DEGREES)
    if abs(k * ROTATE_DEGREES - float(yaw) % 360.0) > 1e-3:
        raise ValueError(f"rotation {yaw} is not a multiple of {ROTATE_DEGREES:g} degrees")
    return k % len(HEADINGS)


def horizon_index(horizon: float) -> int:
    for i, h in enumerate(HORIZONS):
        if abs(float(horizon) - h) < 1e-3:
            return i
    raise ValueError(f"horizon {horizon} is not one of {HORIZONS}")


def rotation_transitions(num_positions: int, move_to: np.ndarray) -> np.ndarray:
    """(P·16, 5) next-pose table from per-position MoveAhead results ``move_to`` (P, 8)
    (the position index reached, or the same one when blocked)."""
    p = np.arange(num_positions)[:, None, None]
    h = np.arange(len(HEADINGS))[None, :, None]
    v = np.arange(len(HORIZONS))[None, None, :]
    shape = (num_positions, len(HEADINGS), len(HORIZONS))
    nxt = np.empty((*shape, NUM_MOVES), dtype=np.int64)
    nxt[..., MOVE_AHEAD] = pose_id(np.broadcast_to(move_to[:, :, None], shape), h, v)
    nxt[..., ROTATE_LEFT] = pose_id(p, (h - 1) % len(HEADINGS), v)
    nxt[..., ROTATE_RIGHT] = pose_id(p, (h + 1) % len(HEADINGS), v)
    nxt[..., LOOK_UP] = pose_id(p, h, np.maximum(v - 1, 0))
    nxt[..., LOOK_DOWN] = pose_id(p, h, np.minimum(v + 1, len(HORIZONS) - 1))
    return nxt.reshape(-1, NUM_MOVES)


def bfs_distances(next_pose: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Fewest movement actions from every pose to any goal pose (−1: unreachable).

    Args:
        next_pose: (V, M) int table, the pose each of M actions leads to (itself on failure).
        goal: (V,) bool, the goal poses (distance 0).
    """
    goal = np.asarray(goal, dtype=bool)
    dist = np.full(goal.shape[0], -1, dtype=np.int32)
    dist[goal] = 0
    frontier = goal.copy()
    d = 0
    while frontier.any():
        reach = frontier[next_pose].any(1) & (dist < 0)
        d += 1
        dist[reach] = d
        frontier = reach
    return dist


@dataclass
class PoseGraph:
    """Navigation poses of a scene with their transitions and the target visibility per pose.

    Attributes:
        scene: scene name.
        positions: (P, 2) grid positions (x, z) in metres.
        next_pose: (P·16, 5) pose reached by each movement action (see :func:`pose_id`).
        visible: target type → (P·16,) bool, target visible from the pose; filled on demand by
            ``visibility_fn(target)`` when given.
    """

    scene: str
    positions: np.ndarray
    next_pose: np.ndarray
    visible: dict[str, np.ndarray] = field(default_factory=dict)
    visibility_fn: Callable[[str], np.ndarray] | None = field(default=None, repr=False)
    _dist: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _index: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {self._key(x, z): i for i, (x, z) in enumerate(self.positions)}

    @staticmethod
    def _key(x: float, z: float) -> tuple[int, int]:
        return (round(float(x) / 0.05), round(float(z) / 0.05))

    @property
    def num_poses(self) -> int:
        return self.next_pose.shape[0]

    def visibility(self, target: str) -> np.ndarray:
        """(P·16,) bool: the target type is visible from each pose."""
        if target not in self.visible:
            if self.visibility_fn is None:
                return np.zeros(self.num_poses, dtype=bool)
            self.visible[target] = np.asarray(self.visibility_fn(target), dtype=bool)
        return self.visible[target]

    def position_index(self, x: float, z: float) -> int | None:
        return self._index.get(self._key(x, z))

    def pose(self, x: float, z: float, rotation: float, horizon: float) -> int | None:
        """Pose index of a pose, or None when (x, z) is not a graph position."""
        p = self.position_index(x, z)
        if p is None:
            return None
        return pose_id(p, heading_index(rotation), horizon_index(horizon))

    def pose_values(self, pose: int) -> tuple[float, float, float, float]:
        """(x, z, rotation, horizon) of a pose index."""
        p, rest = divmod(int(pose), POSES_PER_POSITION)
        h, v = divmod(rest, len(HORIZONS))
        return float(self.positions[p, 0]), float(self.positions[p, 1]), HEADINGS[h], HORIZONS[v]

    def all_pose_values(self) -> np.ndarray:
        """(P·16, 4) float64: :meth:`pose_values` of every pose, in pose-index order."""
        p, rest = np.divmod(np.arange(self.num_poses), POSES_PER_POSITION)
        h, v = np.divmod(rest, len(HORIZONS))
        return np.stack(
            [self.positions[p, 0], self.positions[p, 1], np.asarray(HEADINGS)[h], np.asarray(HORIZONS)[v]], 1
        ).astype(np.float64)

    def distances(self, target: str) -> np.ndarray:
        """BFS distance (movement actions) from every pose to a pose seeing `target`; −1 never."""
        if target not in self._dist:
            self._dist[target] = bfs_distances(self.next_pose, self.visibility(target))
        return self._dist[target]

    def l_opt(self, pose: int | None, target: str) -> int | None:
        """Shortest path in actions from a pose to seeing the target, Done included."""
        if pose is None:
            return None
        d = int(self.distances(target)[pose])
        return None if d < 0 else d + 1

    def start_poses(self, target: str, min_l_opt: int = 2) -> np.ndarray:
        """Pose indices valid as episode starts: horizon 0 and L_opt ≥ min_l_opt (finite)."""
        d = self.distances(target)
        horizon0 = (np.arange(self.num_poses) % len(HORIZONS)) == 0
        return np.nonzero(horizon0 & (d >= min_l_opt - 1))[0]


# -- sampling ------------------------------------------------------------------------------------
SHIPPED_SETS = ("val", "test")  # the episode sets shipped per version (thorgym/datasets/data)


def episode_set(episodes: Any, version: str = "v0") -> list[Episode] | EpisodeFile | None:
    """Fixed episodes from a list of dicts / Episodes, the name of a shipped set of a version
    ("val", "test": its :class:`~thorgym.tasks.base.EpisodeFile`, ``objectnav_[v1_]<set>``), or
    the path of a ``.json(.gz)`` file (read by the env factory); None: sampled."""
    if episodes is None:
        return None
    if isinstance(episodes, str):
        if version not in VERSIONS:
            raise ValueError(f"unknown ObjectNav version {version!r}: use one of {sorted(VERSIONS)}")
        if episodes in SHIPPED_SETS:
            infix = "" if version == "v0" else f"{version}_"
            return EpisodeFile(f"objectnav_{infix}{episodes}")
        return EpisodeFile(episodes)
    out = [Episode.from_dict(e) for e in episodes]
    if not out:
        raise ValueError("episodes must contain at least one episode")
    return out


def resolve_scenes(
    split: str = "train",
    room_types: Sequence[str] | str | None = None,
    scenes: Sequence[str] | str | None = None,
) -> list[str]:
    """Scene list of a split (train 1–20, val 21–25, test 26–30), optionally per room type, or
    the given scenes (validated)."""
    if isinstance(room_types, str):
        room_types = [room_types]
    if scenes is not None:
        if isinstance(scenes, str):
            scenes = [scenes]
        out = [str(s) for s in scenes]
        for s in out:
            room_type(s)  # validates the name
        if not out:
            raise ValueError("scenes must name at least one scene")
        return out
    return scenes_for(split, room_types)


class SceneSampler:
    """Uniform sampling of (scene, target, start pose) episodes from a scene list.

    The scene is uniform over the list; the target uniform over the room type's targets that
    can be seen from some reachable pose (drawn uniformly, dropping unseeable ones and drawing
    again, so only the targets drawn need their visibility computed); the start pose uniform
    over horizon-0 poses with L_opt ≥ 2 (the target is not visible from it). All randomness
    comes from the generator passed to :meth:`sample`.
    """

    def __init__(
        self,
        scenes: Sequence[str],
        graph_fn: Callable[[str], PoseGraph],
        targets: Sequence[str] | None = None,
        min_l_opt: int = 2,
    ) -> None:
        self.scenes = list(scenes)
        self.min_l_opt = int(min_l_opt)
        self.graph_fn = graph_fn
        self.targets = None if targets is None else tuple(targets)
        if self.targets is not None:
            for t in self.targets:
                if t not in TARGET_INDEX:
                    raise ValueError(f"unknown target {t!r}; targets: {list(TARGET_TYPES)}")

    def allowed_targets(self, scene: str) -> list[str]:
        room = room_type(scene)
        return [t for t in TARGETS[room] if self.targets is None or t in self.targets]

    def sample(self, rng: np.random.Generator, scene: str | None = None) -> Episode:
        """Draw one episode (optionally in a given scene)."""
        for _ in range(100):
            s = scene if scene is not None else self.scenes[int(rng.integers(len(self.scenes)))]
            graph = self.graph_fn(s)
            left = self.allowed_targets(s)
            while left:
                target = left[int(rng.integers(len(left)))]
                starts = graph.start_poses(target, self.min_l_opt)
                if len(starts) == 0:
                    left.remove(target)
                    continue
                pose = int(starts[int(rng.integers(len(starts)))])
                x, z, rot, hor = graph.pose_values(pose)
                return Episode(s, target, x, z, rot, hor, graph.l_opt(pose, target))
            if scene is not None:
                raise ValueError(f"{s} has no ObjectNav target that can be reached and seen")
        raise RuntimeError(f"no scene of {self.scenes[:5]}… has a reachable ObjectNav target")


# -- the batched task ----------------------------------------------------------------------------
# Versions of the task. v0: thorgym's first protocol (starts never see the target: L_opt >= 2).
# v1: SAVN's protocol: start anywhere reachable at horizon 0, any of the 8 headings (L_opt >= 1).
VERSIONS: dict[str, int] = {"v0": 2, "v1": 1}  # version -> smallest L_opt of a start pose
INFO_KEYS: tuple[str, ...] = (
    "scene",
    "target",
    "success",
    "spl",
    "l_opt",
    "path_length",
    "last_action_success",
)
SENSORS: tuple[str, ...] = ("rgb", "depth", "features")
EMBEDDING_BOUND = 6.0  # |GloVe 6B 50-d components| < 5.5
# The simulator's navigation action of each task action (Done moves nothing).
_NAV_NAME = {
    MOVE_AHEAD: "MoveAhead",
    ROTATE_LEFT: "RotateLeft",
    ROTATE_RIGHT: "RotateRight",
    LOOK_UP: "LookUp",
    LOOK_DOWN: "LookDown",
}


def look_blocked(actions: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """(N,) bool: LookUp at the top horizon or LookDown at the bottom one (the task forbids them)."""
    a = np.asarray(actions)
    h = np.asarray(horizons, dtype=np.float64)
    return ((a == LOOK_UP) & (h <= HORIZONS[0] + 1e-3)) | ((a == LOOK_DOWN) & (h >= HORIZONS[-1] - 1e-3))


def step_outcomes(
    actions: np.ndarray, target_visible: np.ndarray, steps_taken: np.ndarray, max_steps: np.ndarray
) -> StepResult:
    """Rewards and episode ends of one batched step (the rule :func:`step_outcome` states for one).

    Args: as :func:`step_outcome`, each an (N,) array.
    """
    done = np.asarray(actions) == DONE
    success = done & np.asarray(target_visible, dtype=bool)
    reward = np.where(success, SUCCESS_REWARD, STEP_PENALTY).astype(np.float64)
    truncated = ~done & (np.asarray(steps_taken) >= np.asarray(max_steps))
    return StepResult(reward, done.copy(), truncated, success)


class ObjectNavTask:
    """Object navigation in AI2-THOR scenes, SAVN's setting (Wortsman et al., CVPR 2019).

    ## Description
    The agent starts at a random reachable pose of a room (heading a multiple of 45°, camera
    level) and must find an instance of the target object type: end the episode with ``Done``
    while one is visible (AI2-THOR's rule: in frame, unobstructed, within 1.5 m of the agent's
    central vertical axis). ``thorgym/ObjectNav-v1`` is SAVN's protocol: the start may be any
    reachable pose, even one that already sees the target (L_opt = 1). ``thorgym/ObjectNav-v0``
    (``version="v0"``) keeps thorgym's first protocol: starts never see the target.
    Targets per room type: kitchen Toaster, Microwave, Fridge, CoffeeMaker, GarbageCan, Box,
    Bowl; living room Pillow, Laptop, Television, GarbageCan, Box, Bowl; bedroom HousePlant,
    Lamp, Book, AlarmClock; bathroom Sink, ToiletPaper, SoapBottle, LightSwitch. Scenes:
    train FloorPlan 1–20 of each room type, val 21–25, test 26–30.

    ## Action Space
    ``Discrete(6)``: 0 MoveAhead (0.25 m; diagonally 0.25 m on both axes at odd multiples of
    45°), 1 RotateLeft (45°), 2 RotateRight (45°), 3 LookUp, 4 LookDown (horizon 0° or 30°:
    LookUp at 0° and LookDown at 30° fail and change nothing), 5 Done.

    ## Observation Space
    ``Dict``: ``rgb`` ``Box(0, 255, (height, width, 3), uint8)`` egocentric frame; ``depth``
    ``Box(0, 10, (height, width, 1), float32)`` metres (only with ``depth=True``); ``target``
    ``Discrete(18)``, the index of the target type in :data:`thorgym.tasks.objectnav.
    TARGET_TYPES`; ``target_embedding`` ``Box(-6, 6, (50,), float32)``, the GloVe 6B 50-d vector
    of the target type (mean over its words, e.g. "coffee" and "maker").

    ## Rewards
    +5 for ``Done`` while the target is visible (success), −0.01 for every other step
    (including an unsuccessful ``Done``).

    ## Episode End
    Terminated: the agent chose ``Done`` (success or not). Truncated: the step limit was
    reached (100 steps, 200 in living rooms, or ``max_steps``), or the ai2thor backend process
    died or timed out and was restarted (``info["backend_restart"]``).

    ## Info
    ``scene``, ``target``, ``success`` (bool), ``spl`` (success × L_opt / max(path_length,
    L_opt), set when the episode ends, 0.0 before), ``l_opt`` (shortest path in actions to a pose
    seeing the target plus 1 for Done; −1 when unknown), ``path_length`` (actions taken,
    Done included), ``last_action_success``, ``backend_restart``.

    ## Arguments
    - ``version``: "v1" (SAVN's protocol; the ``thorgym/ObjectNav-v1`` id) or "v0".
    - ``backend``: "sim" (built-in simulator, default) or "ai2thor" (``pip install
      'thorgym[ai2thor]'``; ``controller_kwargs={"local_executable_path": <thorgym-thor>}``
      runs the genuine client on the built-in simulator).
    - ``split``: "train" (default), "val" or "test"; ``room_types``: subset of "kitchen",
      "living_room", "bedroom", "bathroom"; ``scenes``: explicit scene names (overrides both).
    - ``targets``: restrict the target types (default: all of the room type).
    - ``width``, ``height``: frame size (default 128×128; SAVN used 300×300 frames resized to
      224); ``depth``: add the depth observation.
    - ``max_steps``: episode step limit, an int or a mapping room type → int (default 100, 200
      in living rooms).
    - ``device``: torch device of the built-in simulator ("cpu", "cuda", "auto").
    - ``episodes``: fixed evaluation episodes instead of sampling — a list of dicts
      (``scene``, ``target``, ``position{x, z}``, ``rotation``, ``horizon``, ``l_opt``) or the
      name of a shipped set of this version ("val", "test"), or the path of a ``.json(.gz)``
      episode file; each reset takes the next one, in order (a seeded reset starts again from
      the first).
    - ``cached``: built-in simulator only: run on pose tables of the static scenes instead of
      rendering, with the observation ``features`` (a frozen backbone's feature of the frame at
      the agent's pose, computed once per scene and cached) instead of ``rgb`` — ``backbone``
      (default "cnn_small"), ``backbone_ckpt`` (its weights; default its seed-0 initialisation),
      ``size`` (frame size of the features, 64), ``grid`` (pooled to grid × grid, 3),
      ``cache_root``, or ``features_fn`` (scene → (poses, D) array) instead.
    - ``render_mode``: None or "rgb_array" (the egocentric frame).
    - ``controller_kwargs``, ``timeout``: ai2thor backend only: ``Controller`` arguments, and
      seconds to wait for the AI2-THOR process before restarting it.

    ``reset(options=...)`` accepts ``{"episode": dict}`` (play this episode),
    ``{"episode_index": i}`` (the i-th fixed episode) or ``{"scene": name}`` (sample in it).

    ## The task object
    ObjectNav's rules over N navigation worlds (one module, one place; see the module docstring).
    :meth:`env_setup` builds it from the environment's arguments; the Gymnasium documentation
    above is that of the environments made from it (``thorgym/ObjectNav-v0`` / ``-v1``,
    :class:`thorgym.envs.objectnav.ObjectNavEnv`, ``thorgym.envs.task_env.make_env``).

    Args:
        scenes: the scenes episodes are sampled from.
        version: "v0" (starts never see the target) or "v1" (SAVN's protocol: any reachable
            start at horizon 0; see :data:`VERSIONS`).
        targets: restrict the target types (default: all of each room type).
        max_steps: step limit, an int or a mapping room type → int (default :data:`DEFAULT_MAX_STEPS`).
        embeddings: (len(TARGET_TYPES), 50) word vectors of the target types (the
            ``target_embedding`` observation; default :func:`target_embeddings`).
        sensors: the frame observations the worlds provide, a subset of :data:`SENSORS`.
        frame_shape: (height, width) of ``rgb``/``depth``; feature_dim: length of ``features``
            (None: the worlds' ``feature_dim``, read when bound).
        track_paths: keep each episode's poses (for videos and maps; off in batched training).

    The worlds it is bound to provide: ``num_worlds``, ``load(i, scene)``,
    ``teleport(i, x, z, rotation, horizon) -> (ok, message)``, ``move(nav: (N,) int) -> (N,) bool``
    (indices into ``thorgym.sim.NAV_ACTIONS``, −1 = nothing), ``poses() -> (N, 4)``,
    ``sensors(names) -> dict``, ``target_visible(types) -> (N,) bool``, ``pose_graph(scene)``.
    """

    name = "objectnav"
    action_names = ACTIONS
    info_keys = INFO_KEYS

    def __init__(
        self,
        scenes: Sequence[str],
        *,
        embeddings: np.ndarray | None = None,
        version: str = "v0",
        targets: Sequence[str] | None = None,
        max_steps: int | Mapping[str, int] | None = None,
        sensors: Sequence[str] = ("rgb",),
        frame_shape: tuple[int, int] = (128, 128),
        feature_dim: int | None = 0,
        track_paths: bool = False,
    ) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown ObjectNav version {version!r}: use one of {sorted(VERSIONS)}")
        bad = [s for s in sensors if s not in SENSORS]
        if bad:
            raise ValueError(f"unknown sensors {bad}: choose from {SENSORS}")
        if "features" in sensors and feature_dim is not None and feature_dim <= 0:
            raise ValueError("the 'features' sensor needs feature_dim > 0")
        if max_steps is not None:
            max_steps_for("kitchen", max_steps)  # validates
        self.version = version
        self.scenes = list(scenes)
        self.max_steps = max_steps
        self.sensors = tuple(sensors)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.feature_dim = None if feature_dim is None else int(feature_dim)
        self.track_paths = track_paths
        self.worlds: Any = None
        self.sampler: SceneSampler | None = None
        self._targets = targets
        self._embeddings = np.asarray(target_embeddings() if embeddings is None else embeddings, np.float32)
        if self._embeddings.shape != (len(TARGET_TYPES), 50):
            shape = self._embeddings.shape
            raise ValueError(f"embeddings must have shape ({len(TARGET_TYPES)}, 50), got {shape}")
        from thorgym.sim.batch import NAV_INDEX  # (imports torch: only when a task is built)

        self._nav_of = np.array([NAV_INDEX.get(_NAV_NAME.get(a, ""), -1) for a in range(len(ACTIONS))])
        self._alloc(0)

    @classmethod
    def env_setup(
        cls,
        num_worlds: int,
        *,
        split: str = "train",
        room_types: Sequence[str] | str | None = None,
        scenes: Sequence[str] | str | None = None,
        targets: Sequence[str] | None = None,
        width: int = 128,
        height: int = 128,
        depth: bool = False,
        max_steps: int | Mapping[str, int] | None = None,
        episodes: Sequence[Mapping[str, Any] | Episode] | str | None = None,
        version: str = "v0",
        track_paths: bool | None = None,
        cached: bool = False,
        backbone: str = "cnn_small",
        backbone_ckpt: str | Any | None = None,
        size: int = 64,
        grid: int = 3,
        cache_root: str | Any | None = None,
        features_fn: Any = None,
    ) -> EnvSetup:
        """The task, its navigation worlds and its fixed episodes from an environment's arguments
        (see the class docstring: ``episodes`` a list, a shipped set's name or a file's path,
        read by the env factory; ``cached``: pose-table worlds with the ``features`` sensor).
        Paths are tracked for a single world unless ``track_paths`` says."""
        scene_list = resolve_scenes(split, room_types, scenes)
        tables = None
        if cached:
            if depth:
                raise ValueError("cached=True observes features, not frames: depth is not available")
            sensors: tuple[str, ...] = ("features",)
            width = height = int(size)
            tables = PoseTables(
                tuple(scene_list), backbone=backbone, size=int(size), grid=int(grid),
                backbone_ckpt=None if backbone_ckpt is None else str(backbone_ckpt),
                cache_root=None if cache_root is None else str(cache_root), features_fn=features_fn,
            )  # fmt: skip
        else:
            sensors = ("rgb", "depth") if depth else ("rgb",)
        task = cls(
            scene_list, version=version, targets=targets, max_steps=max_steps, sensors=sensors,
            frame_shape=(int(height), int(width)), feature_dim=None if cached else 0,
            track_paths=num_worlds == 1 if track_paths is None else track_paths,
        )  # fmt: skip
        worlds = WorldsSpec(
            task.scenes[0], int(width), int(height), sensors, grid_size=GRID_SIZE,
            rotate_step_degrees=ROTATE_DEGREES, field_of_view=FIELD_OF_VIEW,
            visibility_distance=VISIBILITY_DISTANCE, pose_tables=tables,
        )  # fmt: skip
        return EnvSetup(task, worlds, episode_set(episodes, version))

    # -- spaces ------------------------------------------------------------------------------
    @property
    def observation_space(self) -> spaces.Dict:
        d = frame_spaces(self.sensors, self.frame_shape)
        if "features" in self.sensors:
            d["features"] = spaces.Box(-np.inf, np.inf, (self.feature_dim,), np.float32)
        d["target"] = spaces.Discrete(len(TARGET_TYPES))
        d["target_embedding"] = spaces.Box(-EMBEDDING_BOUND, EMBEDDING_BOUND, (50,), np.float32)
        return spaces.Dict(d)

    @property
    def action_space(self) -> spaces.Discrete:
        return spaces.Discrete(len(ACTIONS))

    # -- binding and episodes ------------------------------------------------------------------
    def _alloc(self, n: int) -> None:
        self.episodes: list[Episode | None] = [None] * n
        self.paths: list[list[tuple[float, float, float, float]]] = [[] for _ in range(n)]
        self._scene = np.full(n, None, dtype=object)
        self._target_name = np.full(n, None, dtype=object)
        self._target = np.zeros(n, dtype=np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._limit = np.ones(n, dtype=np.int64)
        self._l_opt = np.full(n, -1, dtype=np.int64)
        self._success = np.zeros(n, dtype=bool)
        self._ended = np.zeros(n, dtype=bool)
        self._last_ok = np.ones(n, dtype=bool)
        self._visible = np.zeros(n, dtype=bool)

    def bind(self, worlds: Any) -> None:
        """Drive these worlds (a backend's N worlds) from now on."""
        self.worlds = worlds
        if self.feature_dim is None:  # the features of pose-table worlds
            self.feature_dim = int(worlds.feature_dim)
        self.sampler = SceneSampler(self.scenes, worlds.pose_graph, self._targets, VERSIONS[self.version])
        self._alloc(worlds.num_worlds)

    def episode_from_dict(self, d: Mapping[str, Any]) -> Episode:
        return Episode.from_dict(d)

    def sample_episode(self, rng: np.random.Generator, options: Mapping[str, Any]) -> Episode:
        if "episode" in options:
            return Episode.from_dict(options["episode"])
        return self.sampler.sample(rng, scene=options.get("scene"))

    def begin(self, i: int, ep: Episode) -> None:
        """Put world i at the start pose of an episode (its l_opt filled in when unknown)."""
        w = self.worlds
        w.load(i, ep.scene)
        ok, message = w.teleport(i, ep.x, ep.z, ep.rotation, ep.horizon)
        if not ok:
            raise ValueError(f"episode start pose ({ep.x}, {ep.z}) is not valid in {ep.scene}: {message}")
        if ep.l_opt is None:
            g = w.pose_graph(ep.scene)
            ep = replace(ep, l_opt=g.l_opt(g.pose(ep.x, ep.z, ep.rotation, ep.horizon), ep.target))
        self.episodes[i] = ep
        self._scene[i] = ep.scene
        self._target_name[i] = ep.target
        self._target[i] = TARGET_INDEX[ep.target]
        self._steps[i] = 0
        self._limit[i] = max_steps_for(ep.scene, self.max_steps)
        self._l_opt[i] = -1 if ep.l_opt is None else ep.l_opt
        self._success[i] = False
        self._ended[i] = False
        self._last_ok[i] = True
        if self.track_paths:
            self.paths[i] = [(ep.x, ep.z, float(ep.rotation) % 360.0, float(ep.horizon))]

    # -- stepping --------------------------------------------------------------------------------
    def step(self, actions: np.ndarray, live: np.ndarray) -> StepResult:
        """Apply (N,) task actions in the worlds where ``live``; the others stand still."""
        a = np.asarray(actions, dtype=np.int64)
        live = np.asarray(live, dtype=bool)
        blocked = live & look_blocked(a, self.worlds.poses()[:, 3])
        go = live & (a != DONE) & ~blocked
        ok = self.worlds.move(np.where(go, self._nav_of[a], -1))
        self._steps[live] += 1
        out = step_outcomes(a, self._visible, self._steps, self._limit)
        for f in (out.reward, out.terminated, out.truncated, out.success):
            f[~live] = 0
        self._success = np.where(live, out.success, self._success)
        self._last_ok = np.where(go, ok, live & ~blocked)
        self._ended = np.where(live, out.terminated | out.truncated, self._ended)
        if self.track_paths:
            poses = self.worlds.poses()
            for i in np.nonzero(live)[0]:
                self.paths[i].append(tuple(float(v) for v in poses[i]))
        return out

    def truncate(self, i: int) -> None:
        """End world i's episode without success after its backend was restarted: the fresh
        world is put back at the episode's start pose, so the last observation is a valid one."""
        ep = self.episodes[i]
        self.worlds.teleport(i, ep.x, ep.z, ep.rotation, ep.horizon)
        self._success[i] = False
        self._ended[i] = True

    def observe(self) -> dict[str, np.ndarray]:
        frames = self.worlds.sensors(self.sensors)
        self._visible = np.asarray(self.worlds.target_visible(self._target_name), dtype=bool)
        obs = frame_observations(frames, self.sensors)
        if "features" in self.sensors:
            obs["features"] = np.asarray(frames["features"], dtype=np.float32)
        obs["target"] = self._target.copy()
        obs["target_embedding"] = np.asarray(self._embeddings[self._target], dtype=np.float32)
        return obs

    @property
    def target_visible(self) -> np.ndarray:
        """(N,) bool: an instance of the target type is visible now."""
        return self._visible.copy()

    # -- measures --------------------------------------------------------------------------------
    def _spl(self) -> np.ndarray:
        l_opt, steps = self._l_opt, self._steps
        ok = self._ended & self._success & (l_opt > 0)
        return np.where(ok, l_opt / np.maximum(np.maximum(steps, l_opt), 1), 0.0).astype(np.float64)

    def info(self) -> dict[str, np.ndarray]:
        return {
            "scene": self._scene.copy(),
            "target": self._target_name.copy(),
            "success": self._success.copy(),
            "spl": self._spl(),
            "l_opt": self._l_opt.copy(),
            "path_length": self._steps.copy(),
            "last_action_success": self._last_ok.copy(),
        }

    def record(self, i: int) -> dict[str, Any]:
        """The per-episode record of world i (its episode so far; final once it ended)."""
        ep = self.episodes[i]
        return {
            "episode": ep.id,
            "scene": ep.scene,
            "room_type": room_type(ep.scene),
            "target": ep.target,
            "start": {"position": {"x": ep.x, "z": ep.z}, "rotation": ep.rotation, "horizon": ep.horizon},
            "success": bool(self._success[i]),
            "path_length": int(self._steps[i]),
            "l_opt": int(self._l_opt[i]),
            "spl": float(self._spl()[i]),
        }

    def summarize(self, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return summarize(records)

    def expert_action(self, i: int) -> int:
        """A shortest-path action of world i towards a pose that sees the target (Done there)."""
        ep = self.episodes[i]
        graph = self.worlds.pose_graph(ep.scene)
        pose = graph.pose(*self.worlds.poses()[i])
        dist = graph.distances(ep.target)
        if pose is None or dist[pose] <= 0:
            return DONE
        for a in range(graph.next_pose.shape[1]):
            if dist[graph.next_pose[pose, a]] == dist[pose] - 1:
                return a
        return DONE


# -- pose graphs on the built-in simulator ------------------------------------------------------
def _sim_transitions(scene: str, grid_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid positions closed under MoveAhead at the 8 headings, and the MoveAhead table (P, 8),
    computed with the simulator's own collision test (:func:`thorgym.sim.poses.move_table`)."""
    from thorgym.sim.poses import move_table

    return move_table(scene, grid_size=grid_size, headings=HEADINGS)


def _sim_visibility(
    scene: str,
    positions: np.ndarray,
    targets: Sequence[str],
    field_of_view: float,
    visibility_distance: float,
    aspect: float,
) -> dict[str, np.ndarray]:
    """Per target type, (P·16,) bool: visible from each pose, exactly as
    ``BatchedSimulator.visible()`` says (:func:`thorgym.sim.poses.visible_from_poses`)."""
    from thorgym.sim.poses import visible_from_poses

    pose = np.arange(len(positions) * POSES_PER_POSITION)
    p, rest = np.divmod(pose, POSES_PER_POSITION)
    h, v = np.divmod(rest, len(HORIZONS))
    return visible_from_poses(
        scene,
        positions[p],
        np.asarray(HEADINGS)[h],
        np.asarray(HORIZONS)[v],
        list(targets),
        field_of_view=field_of_view,
        visibility_distance=visibility_distance,
        aspect=aspect,
    )


SHIPPED_GRAPHS = Path(__file__).parent / "data" / "posegraphs"  # package data, see ship_pose_graphs


def cache_dir() -> Path | None:
    """Directory of the on-disk pose-graph cache: the ``objectnav`` folder of
    :func:`thorgym.cache.cache_root` (None when caching is off)."""
    root = cache_root()
    return None if root is None else root / "objectnav"


def sim_fingerprint() -> str:
    """What the simulator does (:func:`thorgym.sim.fingerprint.behaviour_fingerprint`): the key
    of every cache derived from it (pose graphs here, per-pose features in ``thorgym.envs``)."""
    from thorgym.sim.fingerprint import behaviour_fingerprint

    return behaviour_fingerprint()


class _SimVisibility:
    """Picklable visibility function of one scene's pose graph, with an on-disk cache."""

    def __init__(self, scene: str, positions: np.ndarray, params: tuple, name: str, path: Path | None):
        self.scene, self.positions, self.params = scene, positions, params
        self.name, self.path = name, path

    def __call__(self, target: str) -> np.ndarray:
        cached = _cache_load(self.name, self.path)
        key = f"visible_{target}"
        if cached is not None and key in cached:
            v = cached[key]
            if v.dtype == np.uint8 and "num_poses" in cached:  # a shipped, bit-packed copy
                v = np.unpackbits(v, count=int(cached["num_poses"])).astype(bool)
            return v
        fov, dist, aspect = self.params
        vis = _sim_visibility(self.scene, self.positions, [target], fov, dist, aspect)[target]
        _cache_store(self.name, self.path, {key: vis})
        return vis


def _cache_load(name: str, path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays of pose-graph cache file ``name``: the user's copy at ``path`` (None: caching
    is off), else the copy shipped with the package (see :func:`ship_pose_graphs`)."""
    for p in (path, SHIPPED_GRAPHS / name):
        if p is None or not p.is_file():
            continue
        try:
            with np.load(p) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            continue
    return None


def _cache_store(name: str, path: Path | None, arrays: dict[str, np.ndarray]) -> None:
    """Merge arrays into the user's cache file (atomic replace; failures are ignored)."""
    if path is None:
        return
    try:
        merged = {**(_cache_load(name, path) or {}), **arrays}
        with atomic_writer(path) as f:
            np.savez_compressed(f, **merged)
    except OSError:
        pass


def _graph_file(
    scene: str, field_of_view: float, visibility_distance: float, aspect: float, grid_size: float
) -> str:
    from thorgym.sim.batch import VISIBILITY_ROWS

    vis_w = max(1, round(VISIBILITY_ROWS * aspect))
    tag = f"{field_of_view:g}-{visibility_distance:g}-{vis_w}-{grid_size:g}"
    return f"{scene}-{tag}-{sim_fingerprint()}.npz"


def ship_pose_graphs(scenes: Sequence[str], out: Path = SHIPPED_GRAPHS, progress: bool = True) -> list[Path]:
    """Write the pose graphs of scenes (ObjectNav's default camera, every target of the room
    type) as the package's shipped copies, so that no first run builds them. Run again whenever
    the simulator changes (its fingerprint names the files); stale copies are removed."""
    from tqdm import tqdm

    written = []
    for scene in tqdm(list(scenes), desc="pose graphs", disable=not progress):
        scene = parse_scene(scene)[0]
        positions, move_to = _sim_transitions(scene, GRID_SIZE)
        arrays = {"positions": positions, "move_to": move_to}
        targets = list(TARGETS[room_type(scene)])
        vis = _sim_visibility(scene, positions, targets, FIELD_OF_VIEW, VISIBILITY_DISTANCE, 1.0)
        arrays.update({f"visible_{t}": np.packbits(v) for t, v in vis.items()})
        arrays["num_poses"] = np.array(len(positions) * POSES_PER_POSITION)
        path = out / _graph_file(scene, FIELD_OF_VIEW, VISIBILITY_DISTANCE, 1.0, GRID_SIZE)
        for stale in out.glob(f"{scene}-*.npz"):
            if stale != path:
                stale.unlink()
        with atomic_writer(path) as f:
            np.savez_compressed(f, **arrays)
        written.append(path)
    return written


@functools.lru_cache(maxsize=128)
def build_pose_graph(
    scene: str,
    field_of_view: float = FIELD_OF_VIEW,
    visibility_distance: float = VISIBILITY_DISTANCE,
    aspect: float = 1.0,
    grid_size: float = GRID_SIZE,
) -> PoseGraph:
    """The pose graph of a scene of the built-in simulator (cached per process and on disk, see
    :func:`cache_dir`). Target visibility is computed per target type on first use.

    Args:
        aspect: frame width / height (visibility is decided on a 64-row raster of this aspect).
    """
    scene = parse_scene(scene)[0]
    params = (float(field_of_view), float(visibility_distance), float(aspect))
    root = cache_dir()
    name = _graph_file(scene, field_of_view, visibility_distance, aspect, grid_size)
    path = None if root is None else root / name
    cached = _cache_load(name, path)
    if cached is not None and "positions" in cached and "move_to" in cached:
        positions, move_to = cached["positions"], cached["move_to"]
    else:
        positions, move_to = _sim_transitions(scene, grid_size)
        _cache_store(name, path, {"positions": positions, "move_to": move_to})
    return PoseGraph(
        scene,
        positions,
        rotation_transitions(len(positions), move_to),
        visibility_fn=_SimVisibility(scene, positions, params, name, path),
    )


# -- pose graphs through an AI2-THOR-style controller ---------------------------------------------
def pose_graph_from_controller(
    step: Callable[..., Any],
    scene: str,
    targets: Sequence[str] | None = None,
    grid_size: float = GRID_SIZE,
    visibility_distance: float = VISIBILITY_DISTANCE,
    field_of_view: float = FIELD_OF_VIEW,
    aspect: float = 1.0,
) -> PoseGraph:
    """Pose graph of the scene loaded in an AI2-THOR-style controller (``step`` = its
    ``step`` method, returning events with AI2-THOR metadata).

    Positions come from ``GetReachablePositions``; MoveAhead leads to the grid neighbour along
    the heading (diagonal at odd multiples of 45°) when that is a reachable position, else it
    fails. Visibility is read from ``metadata["objects"][i]["visible"]`` after teleporting to
    each pose from which some target box is within the visibility distance and in view (all
    other poses cannot see it), per target type on first use (``targets``: computed at once).
    Costs one controller step per such pose.
    """
    ev = step(action="GetReachablePositions")
    reach = ev.metadata.get("actionReturn") or []
    if not reach:
        raise RuntimeError(f"GetReachablePositions returned nothing in {scene}")
    agent = ev.metadata["agent"]
    y = float(agent["position"]["y"])
    home = (agent["position"], agent["rotation"]["y"], agent.get("cameraHorizon", 0.0))
    positions = np.asarray(sorted((p["x"], p["z"]) for p in reach), dtype=np.float64)
    index = {PoseGraph._key(x, z): i for i, (x, z) in enumerate(positions)}
    move_to = np.empty((len(positions), len(HEADINGS)), dtype=np.int64)
    for i, (x, z) in enumerate(positions):
        for h, yaw in enumerate(HEADINGS):
            r = math.radians(yaw)
            dx, dz = round(math.sin(r) * 1.4142), round(math.cos(r) * 1.4142)
            dx, dz = max(-1, min(1, dx)), max(-1, min(1, dz))
            j = index.get(PoseGraph._key(x + dx * grid_size, z + dz * grid_size))
            move_to[i, h] = i if j is None else j
    objects = [o for o in ev.metadata["objects"] if o["objectType"] in TARGET_INDEX]
    cam_h = float(ev.metadata.get("cameraPosition", {}).get("y", y + 0.675)) - y
    fn = _ControllerVisibility(
        step, positions, objects, y, cam_h, home, visibility_distance, field_of_view, aspect
    )
    graph = PoseGraph(scene, positions, rotation_transitions(len(positions), move_to), visibility_fn=fn)
    for t in targets or ():
        graph.visibility(t)
    return graph


class _ControllerVisibility:
    """Visibility of a target type from every pose, read from a controller by teleporting to the
    poses that could see one of its instances."""

    def __init__(
        self,
        step: Callable[..., Any],
        positions: np.ndarray,
        objects: list[Mapping[str, Any]],
        y: float,
        cam_h: float,
        home: tuple[Any, float, float],
        visibility_distance: float,
        field_of_view: float,
        aspect: float,
    ) -> None:
        self.step, self.positions, self.objects = step, positions, objects
        self.y, self.cam_h, self.home = y, cam_h, home
        self.dist, self.fov, self.aspect = visibility_distance, field_of_view, aspect

    def __call__(self, target: str) -> np.ndarray:
        from thorgym.sim.poses import box_in_frustum, footprint_distance

        n_pose = len(self.positions) * POSES_PER_POSITION
        out = np.zeros(n_pose, dtype=bool)
        objs = [o for o in self.objects if o["objectType"] == target]
        if not objs:
            return out
        lo = np.array([_aabb(o)[0] for o in objs])
        hi = np.array([_aabb(o)[1] for o in objs])
        ty = math.tan(math.radians(self.fov) / 2)
        for pose in range(n_pose):
            p, rest = divmod(pose, POSES_PER_POSITION)
            hh, vv = divmod(rest, len(HORIZONS))
            c = np.array([[self.positions[p, 0], self.y + self.cam_h, self.positions[p, 1]]])
            f, rgt, u = _basis(HEADINGS[hh], HORIZONS[vv])
            near = (footprint_distance(c, lo, hi)[0] <= self.dist + 0.05) & (
                box_in_frustum(c, f, rgt, u, ty * self.aspect, ty, lo, hi, margin=0.1)[0]
            )
            if not near.any():
                continue
            e = self.step(
                action="Teleport",
                position={
                    "x": float(self.positions[p, 0]),
                    "y": self.y,
                    "z": float(self.positions[p, 1]),
                },
                rotation={"x": 0.0, "y": HEADINGS[hh], "z": 0.0},
                horizon=HORIZONS[vv],
                standing=True,
            )
            if e.metadata.get("lastActionSuccess", True):
                out[pose] = any(o["visible"] and o["objectType"] == target for o in e.metadata["objects"])
        pos, yaw, hor = self.home
        self.step(
            action="Teleport",
            position=pos,
            rotation={"x": 0.0, "y": yaw, "z": 0.0},
            horizon=hor,
            standing=True,
        )
        return out


def _aabb(o: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    bb = o.get("axisAlignedBoundingBox") or {}
    c, s = bb.get("center") or o["position"], bb.get("size") or {"x": 0.2, "y": 0.2, "z": 0.2}
    lo = [c[k] - s[k] / 2 for k in "xyz"]
    hi = [c[k] + s[k] / 2 for k in "xyz"]
    return lo, hi


def _basis(yaw: float, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, h = math.radians(yaw), math.radians(horizon)
    f = np.array([[math.sin(y) * math.cos(h), -math.sin(h), math.cos(y) * math.cos(h)]])
    r = np.array([[math.cos(y), 0.0, -math.sin(y)]])
    u = np.array([[math.sin(y) * math.sin(h), math.cos(h), math.cos(y) * math.sin(h)]])
    return f, r, u


__all__ = [
    "ACTIONS",
    "ObjectNavTask",
    "VERSIONS",
    "look_blocked",
    "step_outcomes",
    "DEFAULT_MAX_STEPS",
    "Episode",
    "HEADINGS",
    "HORIZONS",
    "PoseGraph",
    "SceneSampler",
    "StepOutcome",
    "TARGETS",
    "TARGET_INDEX",
    "TARGET_TYPES",
    "bfs_distances",
    "build_pose_graph",
    "look_allowed",
    "max_steps_for",
    "pose_graph_from_controller",
    "pose_id",
    "ship_pose_graphs",
    "sim_fingerprint",
    "resolve_scenes",
    "rotation_transitions",
    "spl",
    "step_outcome",
    "summarize",
]
