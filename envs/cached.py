"""Static scenes as lookup tables: ObjectNav without rendering.

ObjectNav never changes a scene, so the frame at a pose is the same on every visit. Given each
scene's pose graph (transitions and target visibility per pose, ``thorgym.tasks.objectnav``) and
a frozen backbone's feature of every pose's frame (``thorgym.envs.feature_cache``), stepping is
a table lookup: :class:`PoseTableWorlds` implements the navigation-worlds interface of
:mod:`thorgym.envs.worlds` that way, and :class:`CachedObjectNavVectorEnv` is the ObjectNav task
on it (observation ``features`` instead of ``rgb``). The same task code runs on it as on the
simulator, and a test checks both give the same episodes step for step.

Scenes are added to the tables the first time a world loads them (features are loaded, or built
and cached on disk, per scene).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from thorgym.sim.scenes import parse_scene
from thorgym.tasks import objectnav as nav
from thorgym.tasks.base import WorldsSpec

from .objectnav import load_episode_list, make_objectnav_task
from .task_env import TaskEnv, TaskVectorEnv, build

__all__ = [
    "CachedObjectNavVectorEnv",
    "PoseFeatures",
    "PoseTableWorlds",
    "cached_objectnav_env",
    "pose_table_worlds",
]

# pose-graph move of each simulator navigation action (thorgym.sim.NAV_ACTIONS order)
_GRAPH_MOVE = {0: nav.MOVE_AHEAD, 4: nav.ROTATE_LEFT, 5: nav.ROTATE_RIGHT, 6: nav.LOOK_UP, 7: nav.LOOK_DOWN}


class PoseTableWorlds:
    """N navigation worlds over pose tables of static scenes (see the module docstring).

    Args:
        num_worlds: N; scene: the scene every world starts in.
        graph_fn: scene → :class:`~thorgym.tasks.objectnav.PoseGraph`.
        features_fn: scene → (poses, D) per-pose features in pose-graph order, or None (no
            ``features`` sensor).
        visible_types: the object types whose visibility is tabled (default: ObjectNav's targets).
    """

    def __init__(
        self,
        num_worlds: int,
        scene: str,
        graph_fn: Callable[[str], nav.PoseGraph],
        features_fn: Callable[[str], np.ndarray] | None = None,
        visible_types: Sequence[str] = nav.TARGET_TYPES,
    ) -> None:
        if len(visible_types) > 63:
            raise ValueError("at most 63 tabled object types (one bit each)")
        self.num_worlds = num_worlds
        self.graph_fn, self.features_fn = graph_fn, features_fn
        self.types = {t: k for k, t in enumerate(visible_types)}
        self.feature_cache: Any = None  # the FeatureCache behind the features, when one was built
        self._offset: dict[str, int] = {}
        self._next: list[np.ndarray] = []
        self._vis: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._feats: list[np.ndarray] = []
        self._graphs: dict[str, nav.PoseGraph] = {}
        self._total = 0
        self.scene = np.full(num_worlds, None, dtype=object)
        self.pose = np.zeros(num_worlds, dtype=np.int64)  # global pose index per world
        moves = np.full(10, -1, dtype=np.int64)
        for a, m in _GRAPH_MOVE.items():
            moves[a] = m
        self._move_of = moves
        for i in range(num_worlds):
            self.load(i, scene)

    # -- tables -----------------------------------------------------------------------------------
    def add_scenes(self, scenes: Sequence[str]) -> None:
        """Add the tables of scenes not yet in them (one concatenation for all of them)."""
        for scene in dict.fromkeys(parse_scene(s)[0] for s in scenes):
            if scene not in self._offset:
                self._tabulate(scene)
        self.next_pose = np.concatenate(self._next)
        self.visible_bits = np.concatenate(self._vis)
        self.pose_values = np.concatenate(self._vals)
        self.features = np.concatenate(self._feats) if self._feats else None

    def _tabulate(self, scene: str) -> None:
        g = self.graph_fn(scene)
        n = g.num_poses
        self._offset[scene] = self._total
        self._graphs[scene] = g
        self._next.append(g.next_pose.astype(np.int64) + self._total)
        bits = np.zeros(n, dtype=np.int64)
        room_targets = nav.TARGETS[nav.room_type(scene)]
        for t, k in self.types.items():
            if t in room_targets or t not in nav.TARGET_INDEX:
                bits |= g.visibility(t).astype(np.int64) << k
        self._vis.append(bits)
        self._vals.append(g.all_pose_values())
        if self.features_fn is not None:
            f = np.asarray(self.features_fn(scene))
            if f.shape[0] != n:
                raise ValueError(f"features of {scene} have {f.shape[0]} rows, its pose graph {n} poses")
            self._feats.append(f)
        self._total += n

    # -- the worlds interface ---------------------------------------------------------------------
    def load(self, i: int, scene: str) -> None:
        scene = parse_scene(scene)[0]
        if scene not in self._offset:
            self.add_scenes([scene])
        self.scene[i] = scene

    def teleport(self, i: int, x: float, z: float, rotation: float, horizon: float) -> tuple[bool, str]:
        scene = self.scene[i]
        try:
            p = self._graphs[scene].pose(x, z, rotation, horizon)
        except ValueError as e:  # a heading or horizon off the pose grid
            return False, str(e)
        if p is None:
            return False, f"({x:g}, {z:g}) is not a reachable position of {scene}"
        self.pose[i] = self._offset[scene] + p
        return True, ""

    def move(self, nav_actions: np.ndarray) -> np.ndarray:
        a = np.asarray(nav_actions, dtype=np.int64)
        act = a >= 0
        m = self._move_of[np.where(act, a, 0)]
        if (act & (m < 0)).any():
            raise ValueError("pose tables support MoveAhead, RotateLeft/Right, LookUp/Down only")
        nxt = self.next_pose[self.pose, np.maximum(m, 0)]
        new = np.where(act, nxt, self.pose)
        ok = ~act | (new != self.pose) | (m != nav.MOVE_AHEAD)
        self.pose = new
        return ok

    def poses(self) -> np.ndarray:
        return self.pose_values[self.pose]

    def sensors(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name != "features" or self.features is None:
                raise ValueError(f"pose tables provide the 'features' sensor only, not {name!r}")
            out["features"] = self.features[self.pose]
        return out

    def target_visible(self, types: Sequence[str | None]) -> np.ndarray:
        k = np.array([self.types.get(t, -1) if t is not None else -1 for t in types], dtype=np.int64)
        bits = self.visible_bits[self.pose]
        return (k >= 0) & (((bits >> np.maximum(k, 0)) & 1) == 1)

    def pose_graph(self, scene: str) -> nav.PoseGraph:
        scene = parse_scene(scene)[0]
        return self._graphs[scene] if scene in self._graphs else self.graph_fn(scene)

    def layout(self, i: int) -> dict[str, Any]:
        from thorgym.sim.batch import get_scene
        from thorgym.sim.world import World

        from .backends import sim_layout

        return sim_layout(World(get_scene(self.scene[i]), 1))

    @property
    def feature_dim(self) -> int:
        """Length of the ``features`` sensor (0 without features)."""
        return 0 if self.features is None else int(self.features.shape[1])

    def close(self) -> None:
        self.features = None


def pose_table_worlds(spec: WorldsSpec, num_worlds: int) -> tuple[PoseTableWorlds, Any]:
    """The pose-table worlds of a spec with ``pose_tables`` (what ``build_worlds`` makes of it):
    every scene of the tables tabled at once; the ``features`` sensor from ``features_fn`` or a
    :class:`~thorgym.envs.feature_cache.FeatureCache` built (once per machine) for the scenes.
    Returns (worlds, the feature cache or None)."""
    t = spec.pose_tables
    if t is None or not t.scenes:
        raise ValueError("pose-table worlds need WorldsSpec.pose_tables with at least one scene")
    bad = [s for s in spec.sensors if s != "features"]
    if bad:
        raise ValueError(f"pose-table worlds do not render: no {bad} (their sensor is 'features')")
    features_fn, cache = t.features_fn, None
    if "features" in spec.sensors and features_fn is None:
        from thorgym.envs.feature_cache import FeatureCache

        cache = FeatureCache(
            root=None if t.cache_root is None else Path(t.cache_root), backbone=t.backbone,
            backbone_ckpt=None if t.backbone_ckpt is None else Path(t.backbone_ckpt), size=t.size,
            grid=t.grid,
        )  # fmt: skip
        cache.build(list(t.scenes), progress=True)  # once per machine: a bar, not a silent wait
        features_fn = cache.get
    graph_fn = nav.build_pose_graph  # features are rendered at aspect 1 (size × size)
    worlds = PoseTableWorlds(
        num_worlds, t.scenes[0], graph_fn, features_fn if "features" in spec.sensors else None
    )
    worlds.add_scenes(t.scenes)  # every scene episodes come from, in one concatenation
    worlds.feature_cache = cache
    return worlds, cache


class CachedObjectNavVectorEnv(TaskVectorEnv):
    """ObjectNav on pose tables: observation ``features`` (a frozen backbone's feature of the
    frame at the agent's pose, cached per scene) instead of ``rgb``; everything else as
    :class:`thorgym.envs.vector.ObjectNavVectorEnv`.

    Args:
        backbone: registry name of the frozen backbone; backbone_ckpt: its weights (a file or a
            ``thorgym pretrain`` run directory; default: the backbone's random initialisation
            with seed 0 — pass a pretrained one for agents that learn).
        size: frame size the features are computed at; grid: the feature map is pooled to
            grid × grid (features = channels × grid²).
        cache_root: where per-scene features are cached (default ``$THORGYM_CACHE/features``).
        Other arguments as :class:`thorgym.envs.vector.ObjectNavVectorEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "train",
        room_types: Sequence[str] | str | None = None,
        scenes: Sequence[str] | str | None = None,
        targets: Sequence[str] | None = None,
        max_steps: int | Mapping[str, int] | None = None,
        episodes: Any = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        version: str = "v0",
        backbone: str = "cnn_small",
        backbone_ckpt: str | Path | None = None,
        size: int = 64,
        grid: int = 3,
        cache_root: str | Path | None = None,
        device: str = "cpu",
        features_fn: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        parts = build(
            nav.ObjectNavTask, num_envs, "sim", device, split=split, room_types=room_types, scenes=scenes,
            targets=targets, max_steps=max_steps, episodes=episodes, version=version, track_paths=False,
            cached=True, backbone=backbone, backbone_ckpt=backbone_ckpt, size=size, grid=grid,
            cache_root=cache_root, features_fn=features_fn,
        )  # fmt: skip
        self.scenes = parts[0].scenes
        if parts[1].feature_cache is not None:
            self.feature_cache = parts[1].feature_cache
        super().__init__(*parts, None, autoreset_mode)


class PoseFeatures(gym.ObservationWrapper):
    """Add the ``features`` observation of the cached env to a rendering ObjectNav env: the cached
    feature of the pose the agent stands in (same numbers as :class:`CachedObjectNavVectorEnv`),
    so a policy trained on cached features can be watched on rendered frames (videos)."""

    def __init__(self, env: gym.Env, features_fn: Callable[[str], np.ndarray]) -> None:
        super().__init__(env)
        self.features_fn = features_fn
        dim = int(np.asarray(features_fn(env.unwrapped.task.scenes[0])).shape[1])
        self.observation_space = gym.spaces.Dict(
            {**env.observation_space.spaces, "features": gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)}
        )

    def observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        base = self.env.unwrapped
        scene = base.episode.scene
        graph = nav.build_pose_graph(scene)
        pose = graph.pose(*base.worlds.poses()[0])
        if pose is None:
            raise RuntimeError(f"the agent left the pose graph of {scene}: no cached feature there")
        return {**obs, "features": np.asarray(self.features_fn(scene)[pose], dtype=np.float32)}


def cached_objectnav_env(
    features_fn: Callable[[str], np.ndarray] | None,
    *,
    version: str = "v1",
    split: str = "test",
    scenes: Sequence[str] | None = None,
    episodes: Any = None,
    max_steps: int | Mapping[str, int] | None = None,
    size: int = 64,
) -> TaskEnv:
    """One ObjectNav environment on pose tables (the single-env form of
    :class:`CachedObjectNavVectorEnv`; no rendering, so no ``rgb`` and no video). Without
    ``features_fn`` the observation is the target only (for agents that read the env, such as
    the random and shortest-path ones)."""
    scene_list = nav.resolve_scenes(split, None, scenes)
    worlds = PoseTableWorlds(1, scene_list[0], nav.build_pose_graph, features_fn)
    nav_task = make_objectnav_task(
        version=version, split=split, room_types=None, scenes=scenes, targets=None, width=size,
        height=size, depth=False, max_steps=max_steps, sensors=("features",) if features_fn else (),
        feature_dim=0 if worlds.features is None else worlds.features.shape[1], track_paths=True,
    )  # fmt: skip
    return TaskEnv(nav_task, worlds, load_episode_list(episodes, version))
