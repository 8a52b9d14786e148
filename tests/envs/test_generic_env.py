"""The registration-table-only path: a task class path in a table line's kwargs, the generic
factories of thorgym.envs.task_env and the worlds its WorldsSpec asks for make a working env."""

from __future__ import annotations

import dataclasses

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from thorgym.envs.multi_agent import MultiAgentTaskEnv, MultiAgentTaskVectorEnv, TaskParallelEnv
from thorgym.envs.multi_agent_worlds import MultiAgentSimWorlds
from thorgym.envs.objectnav import ObjectNavEnv
from thorgym.envs.task_env import TaskEnv, TaskVectorEnv, make_env, make_parallel_env, resolve_task
from thorgym.envs.worlds import build_worlds
from thorgym.registration import task_line
from thorgym.tasks import objectnav as nav
from thorgym.tasks.base import EnvTask, WorldsSpec

TASK = "thorgym.tasks.objectnav:ObjectNavTask"
ID = "thorgym-test/ObjectNavByClass-v0"
KW = {"split": "val", "room_types": "kitchen", "width": 32, "height": 32, "version": "v1"}


@pytest.fixture(scope="module")
def registered() -> str:
    """One registration line, as thorgym/registration.py's: entry points and the task's path."""
    if ID not in gymnasium.registry:
        gymnasium.register(**task_line(ID, TASK, **KW))
    assert gymnasium.registry[ID].entry_point == "thorgym.envs.task_env:make_env"
    return ID


def test_a_table_line_makes_a_checked_env(registered):
    env = gymnasium.make(registered, max_episode_steps=None)
    base = env.unwrapped
    assert isinstance(base, TaskEnv) and isinstance(base.task, nav.ObjectNavTask)
    assert "## Action Space" in base.__doc__  # the task class carries the Gymnasium documentation
    check_env(base, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs["rgb"].shape == (32, 32, 3) and env.observation_space.contains(obs)
    for _ in range(5):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(r, float)
        if term or trunc:
            break
    env.close()


def test_it_plays_what_the_named_env_class_plays():
    """ObjectNavEnv (a thin class over the same set-up) and make_env: identical episodes."""
    a = ObjectNavEnv(**KW)
    b = make_env(TASK, **KW)
    oa, ia = a.reset(seed=11)
    ob, ib = b.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(25):
        assert ia == ib and all(np.array_equal(oa[k], ob[k]) for k in oa)
        act = int(rng.integers(5))  # movements only: the episode runs on
        oa, ra, *_, ia = a.step(act)
        ob, rb, *_, ib = b.step(act)
        assert ra == rb
    a.close()
    b.close()


def test_make_vec_of_the_line_is_batched_and_matches_single_envs(registered):
    venv = gymnasium.make_vec(registered, num_envs=2)
    assert isinstance(venv.unwrapped, TaskVectorEnv) and venv.num_envs == 2
    obs, _ = venv.reset(seed=5)
    for i in range(2):
        single = make_env(TASK, **KW)
        o, _ = single.reset(seed=5 + i)
        assert np.array_equal(o["rgb"], obs["rgb"][i]) and o["target"] == obs["target"][i]
        single.close()
    venv.close()


def test_bad_task_paths_and_worlds_are_clear_errors():
    assert issubclass(resolve_task(TASK), EnvTask)
    with pytest.raises(ValueError, match="package.module:Class"):
        resolve_task("thorgym.tasks.objectnav.ObjectNavTask")
    with pytest.raises(ValueError, match="env_setup"):
        resolve_task("thorgym.tasks.objectnav:Episode")
    spec = WorldsSpec("FloorPlan1", 32, 32)
    with pytest.raises(ValueError, match="at least one agent"):
        build_worlds(dataclasses.replace(spec, agents=0), 1)
    with pytest.raises(ValueError, match="one world per process"):
        build_worlds(spec, 2, backend="ai2thor")
    with pytest.raises(ValueError, match="one-agent task"):
        make_parallel_env(TASK, **KW)
    with pytest.raises(ValueError, match="not \\['normals'\\]"):
        build_worlds(dataclasses.replace(spec, sensors=("rgb", "normals")), 1)
    with pytest.raises(ValueError, match="needs WorldsSpec.classes"):
        build_worlds(dataclasses.replace(spec, sensors=("rgb", "classes")), 1)
    with pytest.raises(ValueError, match="unknown backend 'unity'"):
        build_worlds(spec, 1, backend="unity")


def test_the_worlds_follow_the_spec():
    spec = WorldsSpec("FloorPlan2", 48, 32, ("rgb", "depth"), rotate_step_degrees=90.0, field_of_view=60.0)
    worlds = build_worlds(spec, 2)
    assert worlds.num_worlds == 2 and worlds.field_of_view == 60.0
    assert worlds.sim.worlds[0].spec.name == "FloorPlan2"
    frames = worlds.sensors(("rgb", "depth"))
    assert frames["rgb"].shape == (2, 32, 48, 3) and frames["depth"].shape == (2, 32, 48)
    before = worlds.poses()[0, 2]
    worlds.move(np.array([5, -1]))  # RotateRight in world 0 only (thorgym.sim.NAV_ACTIONS)
    assert (worlds.poses()[0, 2] - before) % 360 == 90.0
    worlds.close()


def test_two_agent_worlds_follow_the_spec():
    spec = WorldsSpec("FloorPlan201", 32, 32, agents=2, rotate_step_degrees=90.0)
    worlds = build_worlds(spec, 2)
    assert isinstance(worlds, MultiAgentSimWorlds) and worlds.agent_count == 2
    assert worlds.poses().shape == (2, 2, 4) and worlds.sensors(("rgb",))["rgb"].shape == (2, 2, 32, 32, 3)
    worlds.close()


FURN = {"split": "test", "width": 48, "height": 48, "max_steps": 40}


def test_furniture_lines_are_task_lines_and_play_the_named_envs():
    """FurnLift-v0's table line names the task class only; the env it makes plays the shipped
    test episodes exactly as FurnLiftEnv (the named, thin class) does."""
    from thorgym.datasets.furniture import load_episodes
    from thorgym.envs.furniture import FurnLiftEnv
    from thorgym.tasks.furniture import FurnLiftTask

    assert gymnasium.registry["thorgym/FurnLift-v0"].kwargs["task"] == "thorgym.tasks.furniture:FurnLiftTask"
    env = gymnasium.make("thorgym/FurnLift-v0", **FURN)
    base = env.unwrapped
    assert isinstance(base, MultiAgentTaskEnv) and isinstance(base.task, FurnLiftTask)
    assert "Action Space" in base.__doc__
    check_env(base, skip_render_check=True)
    shipped = [base.task.episode_from_dict(e) for e in load_episodes("furnlift", "test")]
    assert base.fixed_episodes == shipped  # the task's EpisodeFile, read by the factory
    named = FurnLiftEnv(**FURN)
    oa, ia = env.reset(seed=1)
    ob, ib = named.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(12):
        assert ia.keys() == ib.keys() and all(np.array_equal(ia[k], ib[k]) for k in ia)
        assert all(np.array_equal(oa[a][k], ob[a][k]) for a in oa for k in oa[a])
        act = {a: int(rng.integers(3)) for a in oa}  # moves and turns
        oa, ra, *_, ia = env.step(act)
        ob, rb, *_, ib = named.step(act)
        assert ra == rb
    env.close()
    named.close()


def test_furniture_vector_and_parallel_envs_from_the_task_class():
    from thorgym.envs.furniture import make_furniture_vec

    venv = gymnasium.make_vec("thorgym/FurnMove-v0", num_envs=2, **FURN)
    assert isinstance(venv.unwrapped, MultiAgentTaskVectorEnv)
    ref = make_furniture_vec(2, "furnmove", **FURN)
    oa, _ = venv.reset(seed=4)
    ob, _ = ref.reset(seed=4)
    assert all(np.array_equal(oa[a][k], ob[a][k]) for a in oa for k in oa[a])
    venv.close()
    ref.close()
    par = make_parallel_env("thorgym.tasks.furniture:FurnLiftTask", **FURN)
    assert isinstance(par, TaskParallelEnv) and par.possible_agents == ["agent_0", "agent_1"]
    obs, _ = par.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1"}
    par.close()


def test_shipped_target_embeddings_are_glove():
    """The task's shipped table equals what the datasets layer computes from GloVe (it wrote it)."""
    from thorgym.datasets.objectnav_embeddings import embed_types

    assert np.array_equal(nav.target_embeddings(), embed_types(nav.TARGET_TYPES))


# -- IQA: scene set-up, Open/Close, classes and the semantic map on the generic path ------------
IQA_KW = {"split": "unseen", "width": 32, "height": 32}


def test_iqa_line_is_a_task_line_and_passes_the_checker():
    from thorgym.datasets.iqa import shipped_questions
    from thorgym.tasks.iqa import IQATask

    spec = gymnasium.registry["thorgym/IQA-v0"]
    assert spec.entry_point == "thorgym.envs.task_env:make_env"
    assert spec.kwargs["task"] == "thorgym.tasks.iqa:IQATask"
    env = gymnasium.make("thorgym/IQA-v0", semantic_map=True, **IQA_KW)
    base = env.unwrapped
    assert isinstance(base, TaskEnv) and isinstance(base.task, IQATask)
    assert "## Action Space" in base.__doc__
    check_env(base, skip_render_check=True)
    assert base.fixed_episodes == shipped_questions("unseen")  # the task's EpisodeFile, read by the factory
    obs, _ = env.reset(seed=0)
    assert obs["semantic_map"].shape == (24, 64, 64) and env.observation_space.contains(obs)
    env.close()


def test_iqa_named_env_make_env_and_vector_sub_envs_play_alike():
    """IQAEnv (the thin named class), make_env on the task class and sub-environment i of the
    table line's make_vec reset with seed s + i: the same observations (semantic map included),
    rewards and ends."""
    from thorgym.envs.iqa import IQAEnv
    from thorgym.tasks.iqa import IQATask

    kw = {**IQA_KW, "sample": True, "semantic_map": True}
    venv = gymnasium.make_vec("thorgym/IQA-v0", num_envs=2, **kw)
    vobs, _ = venv.reset(seed=4)
    named, generic = IQAEnv(**kw), make_env(IQATask, **kw)
    singles = [(named, named.reset(seed=4)[0]), (generic, generic.reset(seed=5)[0])]
    live = [True, True]
    rng = np.random.default_rng(0)
    for _ in range(12):
        for i, (_, o) in enumerate(singles):
            if live[i]:
                assert all(np.array_equal(o[k], vobs[k][i]) for k in o), i
        a = rng.integers(0, 7, size=2)  # no answers: the episodes run on
        vobs, vr, vte, vtr, _ = venv.step(a)
        for i, (e, _) in enumerate(singles):
            if live[i]:
                o, r, te, tr, _ = e.step(int(a[i]))
                singles[i] = (e, o)
                assert r == vr[i] and (te, tr) == (vte[i], vtr[i])
                live[i] = not (te or tr)
    venv.close()
    named.close()
    generic.close()


def test_generic_worlds_set_up_scenes_and_tell_classes_apart():
    """configure() builds the world the question generator checks (datasets.iqa.configured_world);
    the classes sensor is the map class of the instance frame; act() opens at the image centre."""
    from thorgym.datasets.iqa import configured_world, object_states, shipped_questions
    from thorgym.tasks import iqa
    from thorgym.tasks.iqa_vocab import MAP_CLASSES, class_of

    q = shipped_questions("unseen")[0]
    c = iqa.scene_config(q.scene, q.seed, q.question_type)
    spec = WorldsSpec(
        "FloorPlan1", 32, 32, ("rgb", "depth", "classes"), field_of_view=60.0, classes=MAP_CLASSES
    )
    worlds = build_worlds(spec, 2)
    worlds.configure(1, c.scene, c.spawn_kwargs(), c.removed_types)
    assert worlds.objects(1) == object_states(configured_world(c))
    pts = worlds.reachable(1)
    assert len(pts) and np.array_equal(pts, pts[np.lexsort((pts[:, 1], pts[:, 0]))])
    x, z = pts[len(pts) // 2]
    assert worlds.teleport(1, float(x), float(z), 90.0, 30.0)[0]
    frames = worlds.sensors(("rgb", "depth", "classes"))
    inst = worlds.sim.observe().instance[1, 0].numpy()
    objs = worlds.sim.worlds[1].objects
    want = np.array([[class_of(objs[k].object_type) if k >= 0 else 0 for k in row] for row in inst])
    assert np.array_equal(frames["classes"][1], want)
    ok, target = worlds.act(["RotateLeft", "OpenObject"])
    assert ok[0] and (target[1] == "") == (not ok[1])
    assert worlds.visible_ids(1) <= set(worlds.objects(1))
    with pytest.raises(ValueError, match="unsupported arguments"):
        worlds.configure(0, "FloorPlan1", {"randomSeed": 1, "placeStationary": True})
    worlds.close()


# -- ObjectNav: shipped sets by name and the pose-table worlds on the generic path ---------------
def test_objectnav_lines_are_task_lines_with_named_sets():
    from thorgym.datasets.objectnav import load_episodes
    from thorgym.tasks.base import EpisodeFile

    for version in ("v0", "v1"):
        spec = gymnasium.registry[f"thorgym/ObjectNav-{version}"]
        assert spec.entry_point == "thorgym.envs.task_env:make_env" and spec.kwargs["task"] == TASK
        assert spec.kwargs["version"] == version
        setup = nav.ObjectNavTask.env_setup(1, split="val", episodes="val", version=version)
        infix = "" if version == "v0" else "v1_"
        assert setup.episodes == EpisodeFile(f"objectnav_{infix}val")  # read by the factory
    env = gymnasium.make("thorgym/ObjectNav-v1", split="val", episodes="val", width=32, height=32)
    shipped = [nav.Episode.from_dict(e) for e in load_episodes("val", version="v1")]
    assert env.unwrapped.fixed_episodes == shipped
    _, info = env.reset(seed=0)
    assert info["scene"] == shipped[0].scene
    env.close()


def _features(scene: str) -> np.ndarray:
    n = nav.build_pose_graph(scene).num_poses
    return np.arange(n * 4, dtype=np.float32).reshape(n, 4)


def test_objectnav_cached_make_vec_is_the_pose_table_env():
    """make_vec(..., cached=True) of the table line: pose-table worlds (WorldsSpec.pose_tables),
    the features sensor, and the episodes of the named CachedObjectNavVectorEnv step for step."""
    from thorgym.envs.cached import CachedObjectNavVectorEnv, PoseTableWorlds

    kw = {"scenes": ["FloorPlan1", "FloorPlan201"], "features_fn": _features}
    venv = gymnasium.make_vec("thorgym/ObjectNav-v1", num_envs=2, cached=True, **kw)
    named = CachedObjectNavVectorEnv(2, version="v1", **kw)
    assert isinstance(venv, TaskVectorEnv) and isinstance(venv.worlds, PoseTableWorlds)
    assert venv.single_observation_space["features"].shape == (4,)
    oa, _ = venv.reset(seed=2)
    ob, _ = named.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(30):
        assert all(np.array_equal(oa[k], ob[k]) for k in oa) and "rgb" not in oa
        a = rng.integers(0, 6, size=2)
        oa, ra, ta, ua, _ = venv.step(a)
        ob, rb, tb, ub, _ = named.step(a)
        assert np.array_equal(ra, rb) and np.array_equal(ta, tb) and np.array_equal(ua, ub)
    venv.close()
    named.close()
    with pytest.raises(ValueError, match="built-in simulator"):
        make_env(TASK, backend="ai2thor", cached=True, **kw)
