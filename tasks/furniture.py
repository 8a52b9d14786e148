"""Two agents, one television: FurnLift and FurnMove (Jain et al., "Two Body Problem", CVPR 2019;
"A Cordial Sync", ECCV 2020), batched over N worlds with two agents each.

FurnLift — find the Television together and lift it:

- Living rooms (FloorPlan201–230; train 201–220, val 221–225, test 226–230). At the start of an
  episode the Television is re-placed at a random floor spot (``TeleportObject``) and the two
  agents stand at random reachable grid poses (90° headings, horizon 0).
- Actions per agent (:data:`FURNLIFT_ACTIONS`): MoveAhead, RotateLeft, RotateRight, Pass, Pickup.
- Success: both agents choose Pickup in the same step while the Television is visible to both
  (AI2-THOR's rule at visibilityDistance 1.25 m, field of view 90°) and they stand at least 8
  grid steps apart (Manhattan distance ≥ 2 m).
- Rewards per agent: −0.01 per step, −0.02 for a failed action (a blocked move; a Pickup that
  does not lift), −0.1 more for a wrong Pickup (−0.13 in all), +1 on success. At most 250 joint
  steps (truncated).

FurnMove — carry the lifted Television together to the goal furniture:

- The agents hold the Television (centre 1.3 m up); each must stay within 0.76 m of its centre.
  13 actions per agent (:data:`FURNMOVE_ACTIONS`): the individual MoveAhead, RotateLeft,
  RotateRight, Pass, and the joint MoveAgents{Ahead,Right,Back,Left}WithObject (both agents and
  the Television move one grid step), RotateLiftedObjectRight (the Television turns 90°) and
  MoveLiftedObject{Ahead,Right,Back,Left} (only the Television moves). Directions of the joint
  actions are relative to the Television's facing, so both agents name the same move. A joint
  action happens only when both agents choose it; a mismatched pair (two different actions, at
  least one joint) fails for both and changes nothing.
- Success: the Manhattan distance between the Television's centre and the goal's centre is
  below 0.26 m (held above it). Rewards per agent: −0.01 per step, −0.02 for a failed action,
  +1 for a new closest distance to the goal, +1 on success; at most 250 joint steps.
- The goal is the first object of ``goal_type``. The reference uses a Dresser; the built-in
  simulator's living rooms have none, so the default goal is the room's TVStand (any furniture
  type of the scene can be asked for, e.g. ``goal_type="Dresser"`` where one exists).

Measures (:func:`summarize`): success, episode length, failed pickups (Pickups that did not lift)
and missed pickups (steps where both agents could have lifted but did not both choose Pickup)
for FurnLift; success, episode length, SPL with Manhattan path lengths (the Television's
Manhattan distance to the goal at the start over the Manhattan length of its path), final
distance and failed actions for FurnMove. The policy-side measures (invalid-action probability
mass, TVD) are the agents' (``thorgym.agents.tbone``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from thorgym.sim.objects import OBJECT_TYPES
from thorgym.sim.scenes import parse_scene, room_type

from . import furniture_planning as plan
from .base import EnvSetup, EpisodeFile, StepResult, WorldsSpec, frame_observations, frame_spaces

AGENTS: tuple[str, ...] = ("agent_0", "agent_1")
SCENES = {"train": tuple(range(201, 221)), "val": tuple(range(221, 226)), "test": tuple(range(226, 231))}
TELEVISION = "Television"
TV_SIZE = np.asarray(OBJECT_TYPES[TELEVISION].size, dtype=np.float64)  # (w, h, d) facing +z
GRID_SIZE = plan.GRID
ROTATE_DEGREES = 90.0
FIELD_OF_VIEW = 90.0
VISIBILITY_DISTANCE = 1.25
FRAME_SIZE = 84
MAX_STEPS = 250
MIN_APART = 8  # grid steps (Manhattan) between the agents for a pickup
LIFT_HEIGHT = 1.3  # centre of the lifted Television
HOLD_RADIUS = 0.76  # carriers stay within this of the Television's centre
GOAL_RADIUS = 0.26  # Manhattan distance to the goal for FurnMove's success
GOAL_TYPE = "TVStand"

STEP_PENALTY = -0.01
FAILED_ACTION = -0.02
WRONG_PICKUP = -0.1
SUCCESS_REWARD = 1.0
CLOSER_REWARD = 1.0

FURNLIFT_ACTIONS: tuple[str, ...] = ("MoveAhead", "RotateLeft", "RotateRight", "Pass", "Pickup")
FURNMOVE_ACTIONS: tuple[str, ...] = (
    "MoveAhead",
    "RotateLeft",
    "RotateRight",
    "Pass",
    "MoveAgentsAheadWithObject",
    "MoveAgentsRightWithObject",
    "MoveAgentsBackWithObject",
    "MoveAgentsLeftWithObject",
    "RotateLiftedObjectRight",
    "MoveLiftedObjectAhead",
    "MoveLiftedObjectRight",
    "MoveLiftedObjectBack",
    "MoveLiftedObjectLeft",
)
MOVE_AHEAD, ROTATE_LEFT, ROTATE_RIGHT, PASS, PICKUP = range(5)
INDIVIDUAL = 4  # FurnMove actions below this index are individual
GROUP_MOVES = range(4, 8)
ROTATE_LIFTED = 8
LIFTED_MOVES = range(9, 13)
# thorgym.sim NAV_ACTIONS indices of the individual actions
_NAV = {MOVE_AHEAD: 0, ROTATE_LEFT: 4, ROTATE_RIGHT: 5, PASS: 8}

SENSORS = ("rgb", "depth", "map")
# Channels of the optional top-down map (egocentric: the agent at the centre facing up, 3.2 m to
# each side, at the frame size).
MAP_CHANNELS = ("obstacles", "television", "self", "partner", "goal")
FURNLIFT_INFO_KEYS = (
    "scene",
    "episode_length",
    "success",
    "failed_pickups",
    "missed_pickups",
    "failed_actions",
    "tv_visible",
    "apart_steps",
)
FURNMOVE_INFO_KEYS = (
    "scene",
    "episode_length",
    "success",
    "failed_actions",
    "mismatched",
    "distance",
    "tv_path",
)


def scenes_of(split: str) -> tuple[str, ...]:
    if split not in SCENES:
        raise ValueError(f"unknown split {split!r}: choose from {tuple(SCENES)}")
    return tuple(f"FloorPlan{k}" for k in SCENES[split])


@dataclass(frozen=True)
class FurnitureEpisode:
    """One episode: the scene, the Television's start (x, z, facing 0–3 with rotation 90·facing)
    and both agents' start poses (x, z, rotation). FurnMove episodes also name the goal object
    and the shortest number of joint steps (``l_opt``) the expert needs."""

    scene: str
    tv: tuple[float, float, int]
    agents: tuple[tuple[float, float, float], ...]
    goal: str | None = None
    l_opt: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "scene": self.scene,
            "tv": list(self.tv),
            "agents": [list(a) for a in self.agents],
        }
        if self.goal is not None:
            d["goal"] = self.goal
        if self.l_opt is not None:
            d["l_opt"] = self.l_opt
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FurnitureEpisode:
        if isinstance(d, FurnitureEpisode):
            return d
        missing = {"scene", "tv", "agents"} - set(d)
        if missing:
            raise ValueError(f"a furniture episode needs {sorted(missing)} (got keys {sorted(d)})")
        scene = parse_scene(str(d["scene"]))[0]
        if room_type(scene) != "living_room":
            raise ValueError(f"furniture episodes are in living rooms (FloorPlan201–230), got {scene}")
        tv = tuple(d["tv"])
        agents = tuple(tuple(float(v) for v in a) for a in d["agents"])
        if len(tv) != 3 or len(agents) != 2 or any(len(a) != 3 for a in agents):
            raise ValueError("tv must be [x, z, facing] and agents two [x, z, rotation] lists")
        goal = d.get("goal")
        l_opt = d.get("l_opt")
        return cls(
            scene,
            (float(tv[0]), float(tv[1]), int(tv[2]) % 4),
            agents,
            None if goal is None else str(goal),
            None if l_opt is None else int(l_opt),
        )


def _scene_from_options(rng: np.random.Generator, options: Mapping[str, Any], scenes: Sequence[str]) -> str:
    scene = options.get("scene")
    if scene is None:
        return scenes[int(rng.integers(len(scenes)))]
    name = parse_scene(str(scene))[0]
    if room_type(name) != "living_room":
        raise ValueError(f"furniture tasks play in living rooms (FloorPlan201–230), got {scene!r}")
    return name


class _FurnitureTask:
    """What FurnLift and FurnMove share: two agents, the Television, bookkeeping and frames."""

    name = "furniture"
    action_names: tuple[str, ...] = ()
    agent_ids = AGENTS

    def __init__(
        self,
        *,
        scenes: Sequence[str] | str = "train",
        sensors: Sequence[str] = ("rgb",),
        frame_shape: tuple[int, int] = (FRAME_SIZE, FRAME_SIZE),
        max_steps: int = MAX_STEPS,
    ) -> None:
        bad = [s for s in sensors if s not in SENSORS]
        if bad or not sensors:
            raise ValueError(f"sensors must be a non-empty subset of {SENSORS}, got {tuple(sensors)}")
        if not (isinstance(max_steps, int) and max_steps > 0):
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.scenes = (
            scenes_of(scenes) if isinstance(scenes, str) else tuple(parse_scene(s)[0] for s in scenes)
        )
        self.sensors = tuple(sensors)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.max_steps = max_steps
        self.worlds: Any = None
        self._alloc(0)

    # -- spaces (per agent) --------------------------------------------------------------------
    @property
    def observation_space(self) -> spaces.Dict:
        d = frame_spaces(self.sensors, self.frame_shape)
        if "map" in self.sensors:
            d["map"] = spaces.Box(0, 255, (*self.frame_shape, len(MAP_CHANNELS)), np.uint8)
        return spaces.Dict(d)

    @property
    def action_space(self) -> spaces.Discrete:
        return spaces.Discrete(len(self.action_names))

    def _alloc(self, n: int) -> None:
        self.episodes: list[FurnitureEpisode | None] = [None] * n
        self.tv_ids: list[str] = [""] * n
        self.paths: list[list[np.ndarray]] = [[] for _ in range(n)]
        self._steps = np.zeros(n, dtype=np.int64)
        self._failed = np.zeros((n, 2), dtype=np.int64)
        self._success = np.zeros(n, dtype=bool)
        self._last_ok = np.ones((n, 2), dtype=bool)
        self._maps: list[TopDownMap | None] = [None] * n

    visibility_distance = VISIBILITY_DISTANCE  # AI2-THOR's visibility rule of the task's worlds

    @classmethod
    def env_setup(
        cls,
        num_worlds: int,
        *,
        split: str = "train",
        width: int = FRAME_SIZE,
        height: int = FRAME_SIZE,
        depth: bool = False,
        top_down_map: bool = False,
        agents_visible: bool = True,
        max_steps: int = MAX_STEPS,
        sample: bool = False,
    ) -> EnvSetup:
        """The task, its two-agent worlds and its episodes (the shipped val/test sets unless
        ``sample``) from an environment's arguments (see the class docstring)."""
        frames = ("rgb", "depth") if depth else ("rgb",)
        sensors = (*frames, "map") if top_down_map else frames
        task = cls(scenes=split, sensors=sensors, frame_shape=(height, width), max_steps=max_steps)
        worlds = WorldsSpec(
            "FloorPlan201", int(width), int(height), frames, grid_size=GRID_SIZE,
            rotate_step_degrees=ROTATE_DEGREES, field_of_view=FIELD_OF_VIEW,
            visibility_distance=cls.visibility_distance, agents=len(AGENTS), agents_visible=agents_visible,
        )  # fmt: skip
        episodes = None if sample or split == "train" else EpisodeFile(f"{cls.name}_{split}")
        return EnvSetup(task, worlds, episodes)

    def bind(self, worlds: Any) -> None:
        if worlds.agent_count != 2:
            raise ValueError(f"furniture tasks need worlds with 2 agents, got {worlds.agent_count}")
        self.worlds = worlds
        self._alloc(worlds.num_worlds)

    def episode_from_dict(self, d: Mapping[str, Any]) -> FurnitureEpisode:
        return FurnitureEpisode.from_dict(d)

    def _start(self, i: int, ep: FurnitureEpisode, tv_y: float) -> None:
        w = self.worlds
        w.load(i, ep.scene)
        tvs = w.object_ids(i, TELEVISION)
        if not tvs:
            raise ValueError(f"{ep.scene} has no {TELEVISION}")
        self.tv_ids[i] = tvs[0]
        # The episode was checked against the scene (free spots, apart): the Television and the
        # agents go to their spots whatever stood there before (forceAction).
        x, z, facing = ep.tv
        ok, why = w.place_object(i, tvs[0], x, tv_y, z, facing, force=True)
        if not ok:
            raise ValueError(f"episode in {ep.scene}: the Television cannot stand at {ep.tv}: {why}")
        for a, (ax, az, rot) in enumerate(ep.agents):
            # forceAction: the partner may still stand there from the last episode.
            ok, why = w.place_agent(i, a, ax, az, rot, force=True)
            if not ok:
                raise ValueError(f"episode in {ep.scene}: agent {a} cannot stand at ({ax}, {az}): {why}")
        self.episodes[i] = ep
        self._steps[i] = 0
        self._failed[i] = 0
        self._success[i] = False
        self._last_ok[i] = True
        self.paths[i] = [w.poses()[i].copy()]
        if "map" in self.sensors:
            self._maps[i] = TopDownMap(w.layout(i), self.frame_shape, skip=(TELEVISION,))

    def truncate(self, i: int) -> None:
        self._steps[i] = self.max_steps

    def observe(self) -> dict[str, np.ndarray]:
        frames = self.worlds.sensors([s for s in self.sensors if s != "map"])
        obs = frame_observations(frames, self.sensors)
        if "map" in self.sensors:
            obs["map"] = self._top_down()
        return obs

    def _goal_box(self, i: int) -> tuple[float, float, float, float] | None:
        return None

    def _top_down(self) -> np.ndarray:
        """(N, 2, H, W, 5) uint8 egocentric maps: each agent at the centre facing up, MAP_RANGE
        metres to every side; channels obstacles, the Television, the agent itself, its partner
        and the goal (FurnMove)."""
        n = len(self.episodes)
        h, w = self.frame_shape
        out = np.zeros((n, 2, h, w, len(MAP_CHANNELS)), dtype=np.uint8)
        poses = self.worlds.poses()
        for i in range(n):
            m = self._maps[i]
            if m is None or self.episodes[i] is None:
                continue
            tv = self._tv_poses(np.array([i]))[0]
            half = (TV_SIZE if int(round(tv[3])) % 2 == 0 else TV_SIZE[[2, 1, 0]]) / 2
            room = m.base.copy()
            m.rect(room, 1, tv[0] - half[0], tv[2] - half[2], tv[0] + half[0], tv[2] + half[2])
            goal = self._goal_box(i)
            if goal is not None:
                m.rect(room, 4, *goal)
            for a in range(2):
                layer = room.copy()
                m.disc(layer, 2, poses[i, a, 0], poses[i, a, 1], 0.15)
                m.disc(layer, 3, poses[i, 1 - a, 0], poses[i, 1 - a, 1], 0.15)
                out[i, a] = m.egocentric(layer, poses[i, a, 0], poses[i, a, 1], poses[i, a, 2], (h, w))
        return out

    def _tv_poses(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(N, 4) or (len(idx), 4) [x, y, z, facing] of the Television in the worlds."""
        if idx is None:
            return self.worlds.object_poses(self.tv_ids)
        return np.stack([self.worlds.object_poses_by_id(int(i), self.tv_ids[int(i)]) for i in idx])


MAP_RANGE = 3.2  # metres from the agent to each side of its egocentric map
_MAP_CELL = 0.05  # metres per cell of the room raster the egocentric maps are cut from


class TopDownMap:
    """A room's static top-down raster (walls and objects, `skip` types left out, 5 cm cells),
    drawing of boxes and discs onto copies of it, and egocentric crops: the agent at the centre,
    its heading up."""

    def __init__(self, layout: Mapping[str, Any], shape: tuple[int, int], skip: Sequence[str] = ()) -> None:
        x0, z0, x1, z1 = layout["bounds"]
        self.x0, self.z0 = x0 - MAP_RANGE, z0 - MAP_RANGE  # padded so that every crop stays inside
        self.cols = int(np.ceil((x1 - x0 + 2 * MAP_RANGE) / _MAP_CELL))
        self.rows = int(np.ceil((z1 - z0 + 2 * MAP_RANGE) / _MAP_CELL))
        self.base = np.zeros((self.rows, self.cols, len(MAP_CHANNELS)), dtype=np.uint8)
        for r in layout.get("walls", ()):
            self.rect(self.base, 0, *r)
        for o in layout.get("objects", ()):
            if o[0] not in skip:
                self.rect(self.base, 0, *o[1:])
        self._grids: dict[tuple[int, int], np.ndarray] = {}

    def rect(self, img: np.ndarray, ch: int, x0: float, z0: float, x1: float, z1: float) -> None:
        """Fill the box [x0, x1] × [z0, z1] (metres) of channel ch (row = z, column = x)."""
        c0 = max(0, int(np.floor((x0 - self.x0) / _MAP_CELL)))
        c1 = min(self.cols, max(int(np.ceil((x1 - self.x0) / _MAP_CELL)), c0 + 1))
        r0 = max(0, int(np.floor((z0 - self.z0) / _MAP_CELL)))
        r1 = min(self.rows, max(int(np.ceil((z1 - self.z0) / _MAP_CELL)), r0 + 1))
        img[r0:r1, c0:c1, ch] = 255

    def disc(self, img: np.ndarray, ch: int, x: float, z: float, radius: float) -> None:
        self.rect(img, ch, x - radius, z - radius, x + radius, z + radius)

    def egocentric(
        self, img: np.ndarray, x: float, z: float, yaw: float, shape: tuple[int, int]
    ) -> np.ndarray:
        """(H, W, C) crop of `img` around (x, z), MAP_RANGE metres to each side, turned so that
        the heading `yaw` (degrees, 0 = +z) points up and the agent's right is to the right."""
        h, w = shape
        if (h, w) not in self._grids:
            # Offsets (forward, right) in metres of each output pixel's centre.
            fwd = (0.5 - (np.arange(h) + 0.5) / h) * 2 * MAP_RANGE
            right = ((np.arange(w) + 0.5) / w - 0.5) * 2 * MAP_RANGE
            self._grids[(h, w)] = np.stack(np.meshgrid(fwd, right, indexing="ij"), -1)
        g = self._grids[(h, w)]
        t = np.radians(float(yaw))
        s, c = np.sin(t), np.cos(t)
        # forward = (sin, cos) in (x, z); right = (cos, −sin)
        wx = x + g[..., 0] * s + g[..., 1] * c
        wz = z + g[..., 0] * c - g[..., 1] * s
        cols = np.clip(((wx - self.x0) / _MAP_CELL).astype(np.int64), 0, self.cols - 1)
        rows = np.clip(((wz - self.z0) / _MAP_CELL).astype(np.int64), 0, self.rows - 1)
        return img[rows, cols]


# -- FurnLift ---------------------------------------------------------------------------------------
class FurnLiftTask(_FurnitureTask):
    """FurnLift (Two Body Problem): two agents find the Television and lift it together.

    Description:
        Living rooms; the Television stands at a random floor spot. Success when both agents
        choose Pickup in the same step while both see the Television within 1.25 m and stand at
        least 8 grid steps apart (Manhattan). See ``thorgym.tasks.furniture``.

    Action Space:
        ``Dict({"agent_0": Discrete(5), "agent_1": Discrete(5)})``: MoveAhead, RotateLeft,
        RotateRight, Pass, Pickup.

    Observation Space:
        ``Dict({"agent_0": Dict(rgb=Box(0, 255, (H, W, 3), uint8)[, depth]), "agent_1": …})``.

    Rewards:
        The team reward (sum over agents); per agent −0.01 per step, −0.02 per failed action,
        −0.1 more per wrong Pickup, +1 on success (``info["agent_rewards"]``).

    Episode End:
        Terminated on success; truncated after 250 joint steps.

    Arguments:
        split: "train" (sampled episodes on FloorPlan201–220), "val" or "test" (the shipped fixed
            episodes of FloorPlan221–225 / 226–230, played in order).
        backend: "sim" (built-in) or "ai2thor" (the genuine client, ``agentCount=2``).
        width, height: frame size per agent (84×84 as the paper). depth: also depth frames.
        top_down_map: also a "map" observation (H, W, 5) uint8, egocentric (the agent at the
            centre facing up, 3.2 m to each side): obstacles, the Television, the agent, its
            partner, the goal (FurnMove).
        agents_visible: render each agent in its partner's view (implicit communication).
        max_steps: joint-step limit (250). device: the simulator's torch device.
        sample: sample episodes on val/test scenes instead of the fixed ones.
        render_mode: None or "rgb_array" (both agents' views side by side).
        controller_kwargs: extra ``ai2thor.controller.Controller`` arguments (ai2thor backend).

    The task object:
        FurnLift's rules over N worlds of two agents (see the module docstring).
        :meth:`env_setup` builds it from the arguments above (``thorgym.envs.task_env.make_env``,
        ``make_parallel_env``, ``make_vector_env``); this is the Gymnasium documentation of the
        environments made from it.

    Args:
        scenes: a split name ("train", "val", "test") or scene names episodes are sampled from.
        sensors: per-agent frames, a subset of ("rgb", "depth").
        frame_shape: (height, width), 84×84 as the paper.
        max_steps: joint-step limit (250).

    The worlds it is bound to (``thorgym.envs.multi_agent_worlds``) provide: ``num_worlds``,
    ``agent_count`` (2); ``load(i, scene)``; ``object_ids(i, type)``; ``place_object(i, id, x, y,
    z, facing, force=False) -> (ok, message)``; ``place_agent(i, agent, x, z, rotation, force=False) -> (ok,
    message)``;
    ``move(nav (N, 2)) -> (N, 2) bool`` (thorgym.sim NAV_ACTIONS indices, −1 nothing);
    ``poses() -> (N, 2, 4)``; ``object_poses(ids) -> (N, 4)`` [x, y, z, facing];
    ``visible(ids) -> (N, 2) bool``; ``sensors(names) -> dict of (N, 2, …)``; ``layout(i)``.
    """

    name = "furnlift"
    action_names = FURNLIFT_ACTIONS
    info_keys = FURNLIFT_INFO_KEYS

    def _alloc(self, n: int) -> None:
        super()._alloc(n)
        self._failed_pickups = np.zeros(n, dtype=np.int64)
        self._missed = np.zeros(n, dtype=np.int64)
        self._can_lift = np.zeros(n, dtype=bool)
        self._tv_visible = np.zeros((n, 2), dtype=bool)
        self._planners: list[plan.LiftPlanner | None] = [None] * n
        self._targets: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n

    def sample_episode(self, rng: np.random.Generator, options: Mapping[str, Any]) -> FurnitureEpisode:
        """A random episode whose pickup can be reached: the Television at a random floor spot,
        both agents at random reachable poses (options: ``scene``)."""
        for _ in range(100):
            scene = _scene_from_options(rng, options, self.scenes)
            ep = sample_lift_episode(scene, rng)
            if ep is not None:
                return ep
        raise RuntimeError(f"no solvable FurnLift episode found in {self.scenes}")

    def begin(self, i: int, episode: FurnitureEpisode) -> None:
        self._start(i, episode, TV_SIZE[1] / 2)
        self._failed_pickups[i] = 0
        self._missed[i] = 0
        self._planners[i] = None
        self._targets[i] = None
        self._update_state(np.array([i]))

    def _update_state(self, idx: np.ndarray) -> None:
        """Visibility of the Television and the pickup condition, in worlds idx."""
        vis = self.worlds.visible(self.tv_ids)
        poses = self.worlds.poses()
        apart = np.abs(poses[:, 0, :2] - poses[:, 1, :2]).sum(-1) / GRID_SIZE
        self._tv_visible[idx] = vis[idx]
        self._apart = apart
        self._can_lift[idx] = vis[idx].all(-1) & (apart[idx] >= MIN_APART - 1e-6)

    def step(self, actions: np.ndarray, live: np.ndarray) -> StepResult:
        acts = np.asarray(actions, dtype=np.int64).reshape(-1, 2)
        n = len(acts)
        live = np.asarray(live, dtype=bool)
        nav = np.full((n, 2), -1, dtype=np.int64)
        for a, k in _NAV.items():
            nav[live[:, None] & (acts == a)] = k
        ok = self.worlds.move(nav)
        pick = acts == PICKUP
        both = pick.all(-1)
        lifted = live & both & self._can_lift
        wrong = live[:, None] & pick & ~lifted[:, None]
        self._missed += live & self._can_lift & ~both
        ok = np.where(pick, lifted[:, None], ok)
        failed = live[:, None] & ~ok
        reward = np.where(live[:, None], STEP_PENALTY, 0.0)
        reward = reward + FAILED_ACTION * failed + WRONG_PICKUP * wrong + SUCCESS_REWARD * lifted[:, None]
        self._failed += failed
        self._failed_pickups += wrong.sum(-1)
        self._steps += live
        self._success |= lifted
        self._last_ok = np.where(live[:, None], ok, self._last_ok)
        idx = np.nonzero(live)[0]
        self._update_state(idx)
        poses = self.worlds.poses()
        for i in idx:
            self.paths[i].append(poses[i].copy())
        terminated = lifted
        truncated = live & ~terminated & (self._steps >= self.max_steps)
        return StepResult(reward=reward, terminated=terminated, truncated=truncated, success=lifted)

    def info(self) -> dict[str, np.ndarray]:
        return {
            "scene": np.array([e.scene if e else "" for e in self.episodes], dtype=object),
            "episode_length": self._steps.copy(),
            "success": self._success.copy(),
            "failed_pickups": self._failed_pickups.copy(),
            "missed_pickups": self._missed.copy(),
            "failed_actions": self._failed.sum(-1),
            "tv_visible": self._tv_visible.copy(),
            "apart_steps": np.asarray(self._apart, dtype=np.float64).copy(),
        }

    def record(self, i: int) -> dict[str, Any]:
        ep = self.episodes[i]
        return {
            "scene": ep.scene,
            "success": bool(self._success[i]),
            "episode_length": int(self._steps[i]),
            "failed_pickups": int(self._failed_pickups[i]),
            "missed_pickups": int(self._missed[i]),
            "failed_actions": int(self._failed[i].sum()),
        }

    def summarize(self, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return summarize(records)

    # -- the shortest-path expert --------------------------------------------------------------
    def expert_actions(self, i: int) -> np.ndarray:
        """(2,) the expert's joint action in world i: each agent walks its shortest path to its
        pose of the soonest-reached pickup pair; both Pickup when both have arrived (Pass while
        waiting for the partner)."""
        ep = self.episodes[i]
        planner = self._planners[i]
        if planner is None:
            planner = lift_planner(ep.scene, ep.tv)
            self._planners[i] = planner
        poses = self.worlds.poses()[i]
        nodes = [planner.graph.node(p[0], p[1], p[2]) for p in poses]
        if self._can_lift[i]:
            return np.array([PICKUP, PICKUP])
        targets = self._targets[i]
        stale = targets is None or any(n < 0 or targets[a][n] == plan.UNREACHED for a, n in enumerate(nodes))
        if stale:
            pair = planner.choose_targets(nodes)
            if pair is None:
                return np.array([PASS, PASS])
            targets = (planner.graph.distances_to(pair[0]), planner.graph.distances_to(pair[1]))
            self._targets[i] = targets
        out = np.full(2, PASS, dtype=np.int64)
        for a, node in enumerate(nodes):
            dist = targets[a]
            if dist[node] == 0:
                continue
            succ = planner.graph.successors(node)
            # When the last MoveAhead failed (the partner stood there), turn instead.
            order = (0, 1, 2) if self._last_ok[i, a] else (1, 2, 0)
            for k in order:
                if dist[succ[k]] == dist[node] - 1:
                    out[a] = (MOVE_AHEAD, ROTATE_LEFT, ROTATE_RIGHT)[k]
                    break
        return out


@functools.lru_cache(maxsize=32)
def lift_planner(scene: str, tv: tuple[float, float, int]) -> plan.LiftPlanner:
    """FurnLift's planner of a scene with the Television on the floor at ``tv`` (the sampler and
    the expert of the same episode share it)."""
    return plan.LiftPlanner(
        scene, tv, tv_id=_first_of_type(scene, TELEVISION), visibility_distance=VISIBILITY_DISTANCE,
        field_of_view=FIELD_OF_VIEW, min_apart=MIN_APART, tv_height=float(TV_SIZE[1]),
    )  # fmt: skip


def sample_lift_episode(scene: str, rng: np.random.Generator) -> FurnitureEpisode | None:
    """One FurnLift episode in `scene` with a reachable pickup pair, or None (a bad draw)."""
    positions = plan.scene_positions(scene)
    if len(positions) < 20:
        return None
    x, z = positions[int(rng.integers(len(positions)))]
    tv = (float(x), float(z), int(rng.integers(4)))
    planner = lift_planner(scene, tv)
    free = planner.graph.positions
    if not planner.ok or len(free) < 10 or len(planner.good_nodes) < 2:
        return None
    a, b = rng.choice(len(free), size=2, replace=False)
    rots = rng.integers(4, size=2)
    agents = tuple(
        (float(free[k][0]), float(free[k][1]), 90.0 * float(r)) for k, r in zip((a, b), rots, strict=True)
    )
    nodes = [planner.graph.node(*p) for p in agents]
    pair = planner.choose_targets(nodes)
    if pair is None:
        return None
    return FurnitureEpisode(scene, tv, agents, l_opt=pair[2] + 1)


@functools.lru_cache(maxsize=64)
def _first_of_type(scene: str, object_type: str) -> str:
    sim = plan.probe_simulator(scene)
    ids = [o.object_id for o in sim.worlds[0].objects if o.object_type == object_type]
    if not ids:
        raise ValueError(f"{scene} has no {object_type}")
    return ids[0]


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """FurnLift / FurnMove measures (percentages for success and SPL, means for the rest)."""
    recs = list(records)
    out: dict[str, Any] = {"episodes": len(recs)}
    if not recs:
        return out

    def mean(key: str) -> float:
        return float(np.mean([float(r[key]) for r in recs]))

    out["success"] = 100.0 * mean("success")
    for key in ("episode_length", "failed_pickups", "missed_pickups", "failed_actions", "final_distance"):
        if key in recs[0]:
            out[key] = mean(key)
    if "spl" in recs[0]:
        out["spl"] = 100.0 * mean("spl")
    return out


# -- FurnMove ---------------------------------------------------------------------------------------
class FurnMoveTask(_FurnitureTask):
    """FurnMove (A Cordial Sync): two agents carry the lifted Television to the goal furniture.

    Description:
        The agents hold the Television 1.3 m up and must stay within 0.76 m of it. Joint actions
        happen only when both choose them; mismatched pairs fail. Success when the Television's
        centre is within 0.26 m (Manhattan) of the goal's. See ``thorgym.tasks.furniture``.

    Action Space:
        ``Dict({"agent_0": Discrete(13), "agent_1": Discrete(13)})`` (``FURNMOVE_ACTIONS``).

    Observation Space:
        As FurnLift's.

    Rewards:
        The team reward; per agent −0.01 per step, −0.02 per failed action, +1 for a new closest
        distance to the goal, +1 on success.

    Episode End:
        Terminated on success; truncated after 250 joint steps.

    Arguments:
        split: "train" (sampled episodes on FloorPlan201–220), "val" or "test" (the shipped fixed
            episodes of FloorPlan221–225 / 226–230, played in order).
        backend: "sim" (built-in) or "ai2thor" (the genuine client, ``agentCount=2``).
        width, height: frame size per agent (84×84 as the paper). depth: also depth frames.
        top_down_map: also a "map" observation (H, W, 5) uint8, egocentric (the agent at the
            centre facing up, 3.2 m to each side): obstacles, the Television, the agent, its
            partner, the goal (FurnMove).
        agents_visible: render each agent in its partner's view (implicit communication).
        max_steps: joint-step limit (250). device: the simulator's torch device.
        sample: sample episodes on val/test scenes instead of the fixed ones.
        render_mode: None or "rgb_array" (both agents' views side by side).
        controller_kwargs: extra ``ai2thor.controller.Controller`` arguments (ai2thor backend).

    The task object:
        FurnMove's rules over N worlds of two agents (see the module docstring).
        :meth:`env_setup` builds it from the arguments above (``thorgym.envs.task_env.make_env``,
        ``make_parallel_env``, ``make_vector_env``); this is the Gymnasium documentation of the
        environments made from it.

    Args: as :class:`FurnLiftTask`, plus ``goal_type`` (the goal furniture, default TVStand).
    The worlds also provide ``move_group(worlds, object_ids, dx, dz) -> (K,) bool`` (both agents
    and the object move together, all or nothing).
    """

    name = "furnmove"
    action_names = FURNMOVE_ACTIONS
    visibility_distance = 1.5  # AI2-THOR's default (FurnLift's 1.25 m is FurnLift's rule)
    info_keys = FURNMOVE_INFO_KEYS

    def __init__(self, *, goal_type: str = GOAL_TYPE, **kwargs: Any) -> None:
        if goal_type not in OBJECT_TYPES:
            raise ValueError(f"unknown goal_type {goal_type!r}")
        self.goal_type = goal_type
        super().__init__(**kwargs)

    def _alloc(self, n: int) -> None:
        super()._alloc(n)
        self._goal_xz = np.zeros((n, 2))
        self._best = np.full(n, np.inf)
        self._start_distance = np.zeros(n)
        self._tv_path = np.zeros(n)
        self._mismatched = np.zeros(n, dtype=np.int64)
        self._planners: list[plan.MovePlanner | None] = [None] * n
        self._plans: list[tuple[Any, dict] | None] = [None] * n

    def sample_episode(self, rng: np.random.Generator, options: Mapping[str, Any]) -> FurnitureEpisode:
        for _ in range(200):
            scene = _scene_from_options(rng, options, self.scenes)
            ep = sample_move_episode(scene, rng, self.goal_type)
            if ep is not None:
                return ep
        raise RuntimeError(f"no solvable FurnMove episode found in {self.scenes}")

    def begin(self, i: int, episode: FurnitureEpisode) -> None:
        self._start(i, episode, LIFT_HEIGHT)
        goal = episode.goal or self.worlds.object_ids(i, self.goal_type)[0]
        self._goal_xz[i] = self.worlds.object_poses_by_id(i, goal)[[0, 2]]
        d = self._distance(np.array([i]))[0]
        self._best[i] = d
        self._start_distance[i] = d
        self._tv_path[i] = 0.0
        self._mismatched[i] = 0
        self._planners[i] = None
        self._plans[i] = None

    def _goal_box(self, i: int) -> tuple[float, float, float, float] | None:
        gx, gz = self._goal_xz[i]
        return (gx - GOAL_RADIUS, gz - GOAL_RADIUS, gx + GOAL_RADIUS, gz + GOAL_RADIUS)

    def _distance(self, idx: np.ndarray) -> np.ndarray:
        tv = self._tv_poses(idx)
        return np.abs(tv[:, [0, 2]] - self._goal_xz[idx]).sum(-1)

    def step(self, actions: np.ndarray, live: np.ndarray) -> StepResult:
        acts = np.asarray(actions, dtype=np.int64).reshape(-1, 2)
        n = len(acts)
        live = np.asarray(live, dtype=bool)
        w = self.worlds
        before = self._tv_poses()
        ok = np.ones((n, 2), dtype=bool)
        individual = (acts < INDIVIDUAL).all(-1) & live
        joint = (acts[:, 0] == acts[:, 1]) & (acts[:, 0] >= INDIVIDUAL) & live
        mismatch = live & ~individual & ~joint
        ok[mismatch] = False
        self._mismatched += mismatch
        # Individual actions: a MoveAhead that would leave the hold radius fails without moving.
        nav = np.full((n, 2), -1, dtype=np.int64)
        poses = w.poses()
        for a, k in _NAV.items():
            nav[individual[:, None] & (acts == a)] = k
        heading = np.round(poses[..., 2] / 90.0).astype(np.int64) % 4
        step_xy = plan._DIRS[heading] * GRID_SIZE
        ahead = poses[..., :2] + step_xy
        too_far = np.hypot(*(ahead - before[:, None, [0, 2]]).transpose(2, 0, 1)) > HOLD_RADIUS + 1e-6
        held_back = (nav == 0) & too_far
        nav[held_back] = -1
        moved = w.move(nav)
        ok &= np.where(individual[:, None], moved & ~held_back, True)
        # Joint actions, world by world (few worlds act jointly in one step).
        for i in np.nonzero(joint)[0]:
            ok[i] = self._joint(i, int(acts[i, 0]), before[i], poses[i])
        after = self._tv_poses()
        self._tv_path += np.abs(after[:, [0, 2]] - before[:, [0, 2]]).sum(-1) * live
        dist = np.abs(after[:, [0, 2]] - self._goal_xz).sum(-1)
        closer = live & (dist < self._best - 1e-6)
        self._best = np.where(closer, dist, self._best)
        success = live & (dist < GOAL_RADIUS)
        failed = live[:, None] & ~ok
        reward = np.where(live[:, None], STEP_PENALTY, 0.0) + FAILED_ACTION * failed
        reward = reward + CLOSER_REWARD * closer[:, None] + SUCCESS_REWARD * success[:, None]
        self._failed += failed
        self._steps += live
        self._success |= success
        self._last_ok = np.where(live[:, None], ok, self._last_ok)
        poses = w.poses()
        for i in np.nonzero(live)[0]:
            self.paths[i].append(poses[i].copy())
        truncated = live & ~success & (self._steps >= self.max_steps)
        return StepResult(reward=reward, terminated=success, truncated=truncated, success=success)

    def _joint(self, i: int, action: int, tv: np.ndarray, poses: np.ndarray) -> bool:
        """Apply one joint action in world i; whether it happened."""
        w = self.worlds
        x, _, z, facing = tv
        facing = int(round(facing)) % 4
        if action in GROUP_MOVES:
            dx, dz = plan.direction(facing + action - GROUP_MOVES.start)
            return bool(w.move_group([i], [self.tv_ids[i]], [dx], [dz])[0])
        if action == ROTATE_LIFTED:
            return w.place_object(i, self.tv_ids[i], x, LIFT_HEIGHT, z, (facing + 1) % 4)[0]
        dx, dz = plan.direction(facing + action - LIFTED_MOVES.start)
        nx, nz = x + dx, z + dz
        if (np.hypot(poses[:, 0] - nx, poses[:, 1] - nz) > HOLD_RADIUS + 1e-6).any():
            return False
        return w.place_object(i, self.tv_ids[i], nx, LIFT_HEIGHT, nz, facing)[0]

    def info(self) -> dict[str, np.ndarray]:
        n = len(self.episodes)
        dist = (
            self._distance(np.arange(n)) if n and all(e is not None for e in self.episodes) else np.zeros(n)
        )
        return {
            "scene": np.array([e.scene if e else "" for e in self.episodes], dtype=object),
            "episode_length": self._steps.copy(),
            "success": self._success.copy(),
            "failed_actions": self._failed.sum(-1),
            "mismatched": self._mismatched.copy(),
            "distance": dist,
            "tv_path": self._tv_path.copy(),
        }

    def record(self, i: int) -> dict[str, Any]:
        ep = self.episodes[i]
        opt = max(0.0, self._start_distance[i] - GOAL_RADIUS + 1e-6)
        opt = np.ceil(opt / GRID_SIZE - 1e-6) * GRID_SIZE
        spl = float(self._success[i]) * (opt / max(opt, self._tv_path[i]) if opt > 0 else 1.0)
        return {
            "scene": ep.scene,
            "success": bool(self._success[i]),
            "episode_length": int(self._steps[i]),
            "failed_actions": int(self._failed[i].sum()),
            "mismatched": int(self._mismatched[i]),
            "spl": spl,
            "final_distance": float(self._distance(np.array([i]))[0]),
            "l_opt": ep.l_opt,
        }

    def summarize(self, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return summarize(records)

    def expert_actions(self, i: int) -> np.ndarray:
        """(2,) the expert's joint action: the next group move (or RotateLiftedObjectRight) on a
        shortest path of the Television to the goal with the carriers' formation kept."""
        ep = self.episodes[i]
        if self._planners[i] is None:
            self._planners[i] = move_planner(ep.scene)
        planner = self._planners[i]
        tv = self._tv_poses(np.array([i]))[0]
        poses = self.worlds.poses()[i]
        offsets = poses[:, :2] - tv[[0, 2]]
        key = tuple(np.round(offsets.reshape(-1) / GRID_SIZE).astype(int))
        cached = self._plans[i]
        if cached is None or cached[0] != key:
            start = (float(tv[0]), float(tv[2]))
            dist = planner.plan(start, int(round(tv[3])) % 4, offsets, self._goal_xz[i], GOAL_RADIUS)
            cached = (key, dist, start)
            self._plans[i] = cached
        _, dist, origin = cached
        ix = int(round((tv[0] - origin[0]) / GRID_SIZE))
        iz = int(round((tv[2] - origin[1]) / GRID_SIZE))
        f = int(round(tv[3])) % 4
        here = dist.get((ix, iz, f))
        if here is None or here == 0:
            return np.array([PASS, PASS])
        for d in range(4):
            dx, dz = plan._DIRS[(f + d) % 4]
            if dist.get((ix + int(dx), iz + int(dz), f), -1) == here - 1:
                return np.array([GROUP_MOVES.start + d] * 2)
        if dist.get((ix, iz, (f + 1) % 4), -1) == here - 1:
            return np.array([ROTATE_LIFTED, ROTATE_LIFTED])
        return np.array([PASS, PASS])


@functools.lru_cache(maxsize=32)
def move_planner(scene: str) -> plan.MovePlanner:
    """FurnMove's planner of a scene (static: the scene's boxes without the Television)."""
    return plan.MovePlanner(scene, _first_of_type(scene, TELEVISION), TV_SIZE, LIFT_HEIGHT)


@functools.lru_cache(maxsize=32)
def goal_formations(scene: str, goal_id: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Carrier offsets ((dx0, dz0), (dx1, dz1)) from the Television's centre that are valid at
    some goal state of the scene (the Television above the goal, either facing): the formations
    worth trying, since group moves keep them."""
    planner = move_planner(scene)
    positions = plan.scene_positions(scene)
    origin = positions[0]
    goal = plan.probe_simulator(scene).worlds[0].object(goal_id).center[[0, 2]]
    base = origin + np.round((goal - origin) / GRID_SIZE) * GRID_SIZE
    steps = np.arange(-3, 4)
    cells = base + np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2) * GRID_SIZE
    cells = cells[np.abs(cells - goal).sum(-1) < GOAL_RADIUS]
    ring = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2) * GRID_SIZE
    ring = ring[(np.hypot(ring[:, 0], ring[:, 1]) <= HOLD_RADIUS) & (np.abs(ring).sum(-1) > 0)]
    out: set[tuple[tuple[float, float], ...]] = set()
    for c in cells:
        for f in range(4):
            if not planner.tv_fits(c[None], f)[0]:
                continue
            spots = c + ring
            ok = planner.agents_free(spots) & planner.agent_clear_of_tv(spots, c, f)
            offs = [tuple(float(v) for v in o) for o in ring[ok]]
            for i, p in enumerate(offs):
                for q in offs[i + 1 :]:
                    if np.hypot(p[0] - q[0], p[1] - q[1]) >= GRID_SIZE - 1e-6:
                        out.add((p, q))
    return tuple(sorted(out))


def sample_move_episode(
    scene: str, rng: np.random.Generator, goal_type: str = GOAL_TYPE
) -> FurnitureEpisode | None:
    """One FurnMove episode: the lifted Television at a random spot with both carriers beside it
    (within the hold radius, free grid positions), with a group-move path to the goal; or None."""
    positions = plan.scene_positions(scene)
    sim = plan.probe_simulator(scene)
    objs = sim.worlds[0].objects
    tv_id = next((o.object_id for o in objs if o.object_type == TELEVISION), None)
    goal = next((o for o in objs if o.object_type == goal_type), None)
    if tv_id is None or goal is None or len(positions) < 20:
        return None
    planner = move_planner(scene)
    goal_xz = goal.center[[0, 2]].astype(np.float64)
    forms = goal_formations(scene, goal.object_id)
    if not forms:
        return None
    x, z = positions[int(rng.integers(len(positions)))]
    facing = int(rng.integers(4))
    if np.abs(np.array([x, z]) - goal_xz).sum() < 4 * GRID_SIZE:
        return None  # too easy
    if not planner.tv_fits(np.array([[x, z]]), facing)[0]:
        return None
    # Carriers keep their formation on group moves: draw formations that fit at the goal until
    # one also fits at the start and reaches the goal from there.
    for k in rng.permutation(len(forms))[:24]:
        offsets = np.asarray(forms[k], dtype=np.float64)
        spots = offsets + np.array([x, z])
        clear = planner.agent_clear_of_tv(spots, np.array([x, z]), facing)
        if not (planner.agents_free(spots).all() and clear.all()):
            continue
        dist = planner.plan((float(x), float(z)), facing, offsets, goal_xz, GOAL_RADIUS)
        if (0, 0, facing) in dist:
            break
    else:
        return None
    rots = rng.integers(4, size=2)
    agents = tuple((float(p[0]), float(p[1]), 90.0 * float(r)) for p, r in zip(spots, rots, strict=True))
    return FurnitureEpisode(
        scene, (float(x), float(z), facing), agents, goal=goal.object_id, l_opt=dist[(0, 0, facing)]
    )
