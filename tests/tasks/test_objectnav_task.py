"""ObjectNav task logic: SPL, BFS on a hand-made pose graph, step semantics, sampling, and the
simulator pose graph's agreement with the simulator itself (transitions and visibility)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thorgym.sim import BatchedSimulator
from thorgym.tasks import objectnav as on

SCENE = "FloorPlan401"


# -- SPL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("success", "l_opt", "l_agent", "expected"),
    [
        (True, 5, 5, 1.0),
        (True, 5, 10, 0.5),
        (True, 4, 16, 0.25),
        (True, 5, 3, 1.0),  # max(L_agent, L_opt): never above 1
        (False, 5, 5, 0.0),
        (True, None, 5, 0.0),
        (True, 0, 5, 0.0),
    ],
)
def test_spl_fixed_numbers(success, l_opt, l_agent, expected):
    assert on.spl(success, l_opt, l_agent) == pytest.approx(expected)


def test_summarize_reports_percentages_and_long_subset():
    eps = [
        {"success": True, "spl": 1.0, "l_opt": 3},
        {"success": True, "spl": 0.5, "l_opt": 6},
        {"success": False, "spl": 0.0, "l_opt": 8},
        {"success": False, "spl": 0.0, "l_opt": 2},
    ]
    s = on.summarize(eps)
    assert s["success"] == pytest.approx(50.0)
    assert s["spl"] == pytest.approx(37.5)
    assert s["episodes_l5"] == 2
    assert s["success_l5"] == pytest.approx(50.0)
    assert s["spl_l5"] == pytest.approx(25.0)


# -- BFS on a tiny pose graph checked by hand -----------------------------------------------------
def _corridor() -> on.PoseGraph:
    """Positions p0 (0, 0) – p1 (0, 0.25) – p2 (0, 0.5) on a north–south corridor, and p3 alone.

    MoveAhead works only facing north (heading 0: p0→p1→p2) or south (heading 4: p2→p1→p0).
    The target is visible only from p2 facing north, looking down (horizon 30).
    """
    positions = np.array([[0.0, 0.0], [0.0, 0.25], [0.0, 0.5], [2.0, 2.0]])
    move = np.tile(np.arange(4)[:, None], (1, 8))  # blocked everywhere …
    move[0, 0], move[1, 0] = 1, 2  # … but north
    move[2, 4], move[1, 4] = 1, 0  # … and south
    goal = np.zeros(4 * 16, dtype=bool)
    goal[on.pose_id(2, 0, 1)] = True
    return on.PoseGraph("FloorPlan401", positions, on.rotation_transitions(4, move), visible={"Sink": goal})


def test_bfs_hand_checked_corridor():
    g = _corridor()
    d = g.distances("Sink")
    # p0 facing north, level: MoveAhead, MoveAhead, LookDown → 3; L_opt adds Done → 4.
    assert d[on.pose_id(0, 0, 0)] == 3
    assert g.l_opt(on.pose_id(0, 0, 0), "Sink") == 4
    # p0 facing south: four 45° turns to face north, then the 3 above.
    assert d[on.pose_id(0, 4, 0)] == 7
    # p0 facing north-east (heading 1): one RotateLeft, then 3.
    assert d[on.pose_id(0, 1, 0)] == 4
    # p1 facing north, already looking down: one MoveAhead.
    assert d[on.pose_id(1, 0, 1)] == 1
    # p2 facing east (heading 2) looking down: two RotateLeft.
    assert d[on.pose_id(2, 2, 1)] == 2
    assert d[on.pose_id(2, 0, 1)] == 0
    # p3 cannot reach the goal.
    assert (d[on.pose_id(3, 0, 0) : on.pose_id(3, 0, 0) + 16] == -1).all()
    assert g.l_opt(on.pose_id(3, 0, 0), "Sink") is None
    starts = set(g.start_poses("Sink").tolist())
    assert on.pose_id(0, 0, 0) in starts and on.pose_id(3, 0, 0) not in starts
    assert all(p % 2 == 0 for p in starts)  # horizon 0 only
    assert g.pose(0.0, 0.25, 90.0, 30.0) == on.pose_id(1, 2, 1)
    assert g.pose_values(on.pose_id(1, 2, 1)) == (0.0, 0.25, 90.0, 30.0)


def test_rotation_and_look_transitions():
    nxt = on.rotation_transitions(1, np.zeros((1, 8), dtype=np.int64))
    p = on.pose_id(0, 0, 0)
    assert nxt[p, on.ROTATE_LEFT] == on.pose_id(0, 7, 0)
    assert nxt[p, on.ROTATE_RIGHT] == on.pose_id(0, 1, 0)
    assert nxt[p, on.LOOK_UP] == p  # LookUp at horizon 0 fails
    assert nxt[p, on.LOOK_DOWN] == on.pose_id(0, 0, 1)
    q = on.pose_id(0, 0, 1)
    assert nxt[q, on.LOOK_DOWN] == q  # LookDown at 30 fails
    assert nxt[q, on.LOOK_UP] == p


# -- step semantics -------------------------------------------------------------------------------
def test_step_outcome_semantics():
    ok = on.step_outcome(on.DONE, True, 7, 100)
    assert (ok.reward, ok.terminated, ok.truncated, ok.success) == (5.0, True, False, True)
    miss = on.step_outcome(on.DONE, False, 7, 100)
    assert (miss.reward, miss.terminated, miss.truncated, miss.success) == (
        -0.01,
        True,
        False,
        False,
    )
    move = on.step_outcome(on.MOVE_AHEAD, True, 7, 100)
    assert (move.reward, move.terminated, move.truncated) == (-0.01, False, False)
    last = on.step_outcome(on.ROTATE_LEFT, True, 100, 100)
    assert (last.terminated, last.truncated) == (False, True)
    done_at_limit = on.step_outcome(on.DONE, True, 100, 100)
    assert (done_at_limit.terminated, done_at_limit.truncated) == (True, False)


def test_horizon_rule_and_limits():
    assert not on.look_allowed(on.LOOK_UP, 0.0) and on.look_allowed(on.LOOK_UP, 30.0)
    assert on.look_allowed(on.LOOK_DOWN, 0.0) and not on.look_allowed(on.LOOK_DOWN, 30.0)
    assert on.max_steps_for("FloorPlan1") == 100
    assert on.max_steps_for("FloorPlan215") == 200
    assert on.max_steps_for("FloorPlan215", 50) == 50
    assert on.max_steps_for("FloorPlan215", {"kitchen": 10}) == 200
    assert on.max_steps_for("FloorPlan5", {"kitchen": 10}) == 10


def test_targets_and_episode_roundtrip():
    assert len(on.TARGET_TYPES) == 18 and on.TARGET_TYPES[0] == "Toaster"
    assert on.TARGETS["bathroom"] == ("Sink", "ToiletPaper", "SoapBottle", "LightSwitch")
    ep = on.Episode("FloorPlan401", "Sink", 0.25, -0.5, 135.0, 0.0, 6, "x")
    assert on.Episode.from_dict(ep.to_dict()) == ep
    with pytest.raises(ValueError, match="unknown target"):
        on.Episode.from_dict({**ep.to_dict(), "target": "Unicorn"})
    assert on.resolve_scenes("val", ["bathroom"]) == [f"FloorPlan{i}" for i in range(421, 426)]


# -- the simulator's pose graph -------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> on.PoseGraph:
    return on.build_pose_graph(SCENE)


def _sim_at(poses, graph, width=64, height=64) -> BatchedSimulator:
    sim = BatchedSimulator(
        [SCENE] * len(poses),
        width=width,
        height=height,
        rotate_step_degrees=45,
        render_depth=False,
        render_instance_segmentation=False,
        render_rgb=False,
    )
    for j, p in enumerate(poses):
        x, z, r, h = graph.pose_values(p)
        sim.pos[j, 0, 0], sim.pos[j, 0, 2] = x, z
        sim.yaw[j, 0], sim.horizon[j, 0] = r, h
    sim._visible = None
    return sim


def test_pose_graph_visibility_equals_simulator(graph):
    rng = np.random.default_rng(0)
    targets = on.TARGETS["bathroom"]
    seen = np.zeros(graph.num_poses, dtype=bool)
    for t in targets:
        seen |= graph.visibility(t)
    assert seen.any()
    poses = np.concatenate([rng.choice(np.nonzero(seen)[0], 48), rng.choice(graph.num_poses, 48)])
    sim = _sim_at(poses, graph)
    vis = sim.visible()[:, 0].numpy()
    objs = sim.worlds[0].objects
    for t in targets:
        idx = [k for k, o in enumerate(objs) if o.object_type == t]
        theirs = vis[:, idx].any(1) if idx else np.zeros(len(poses), dtype=bool)
        np.testing.assert_array_equal(graph.visibility(t)[poses], theirs, err_msg=t)


def test_pose_graph_transitions_equal_simulator(graph):
    rng = np.random.default_rng(1)
    poses = rng.choice(graph.num_poses, 64, replace=False)
    for a in range(on.NUM_MOVES):
        sim = _sim_at(poses, graph)
        nav = {0: 0, 1: 4, 2: 5, 3: 6, 4: 7}[a]  # NAV_ACTIONS indices
        acts = torch.full((len(poses),), nav, dtype=torch.long)
        for j, p in enumerate(poses):
            if not on.look_allowed(a, graph.pose_values(p)[3]):
                acts[j] = -1
        sim.step_nav(acts)
        for j, p in enumerate(poses):
            x, z = float(sim.pos[j, 0, 0]), float(sim.pos[j, 0, 2])
            got = graph.pose(x, z, float(sim.yaw[j, 0]), float(sim.horizon[j, 0]))
            assert got == graph.next_pose[p, a], (on.ACTIONS[a], graph.pose_values(p))


def test_sampler_is_deterministic_and_valid(graph):
    sampler = on.SceneSampler([SCENE, "FloorPlan402"], on.build_pose_graph)
    a = [sampler.sample(np.random.default_rng(5)) for _ in range(3)]
    b = [sampler.sample(np.random.default_rng(5)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(3)
    for _ in range(20):
        ep = sampler.sample(rng, scene=SCENE)
        assert ep.target in on.TARGETS["bathroom"]
        assert ep.horizon == 0.0 and ep.rotation % 45 == 0
        assert ep.l_opt is not None and ep.l_opt >= 2
        pose = graph.pose(ep.x, ep.z, ep.rotation, ep.horizon)
        assert not graph.visibility(ep.target)[pose]
        assert graph.l_opt(pose, ep.target) == ep.l_opt


def test_shipped_pose_graphs_are_current_and_complete():
    """Every scene's pose graph ships for the current simulator (else: run ship_pose_graphs)."""
    from thorgym.sim.scenes import scenes_for

    names = {p.name for p in on.SHIPPED_GRAPHS.glob("*.npz")}
    stale = [
        s
        for s in scenes_for("train") + scenes_for("val") + scenes_for("test")
        if on._graph_file(s, on.FIELD_OF_VIEW, on.VISIBILITY_DISTANCE, 1.0, on.GRID_SIZE) not in names
    ]
    assert not stale, (
        f"{len(stale)} shipped pose graphs are missing or stale (e.g. {stale[:3]}); the simulator "
        "changed: run `python -c 'import thorgym.tasks.objectnav as o, thorgym.sim.scenes as s; "
        "o.ship_pose_graphs(s.scenes_for(\"train\")+s.scenes_for(\"val\")+s.scenes_for(\"test\"))'`"
    )


def test_shipped_pose_graph_equals_a_fresh_build(tmp_path, monkeypatch):
    monkeypatch.setenv("THORGYM_CACHE", str(tmp_path))
    on.build_pose_graph.cache_clear()
    shipped = on.build_pose_graph("FloorPlan402")
    vis = shipped.visibility("Sink")
    monkeypatch.setattr(on, "SHIPPED_GRAPHS", tmp_path / "none")
    on.build_pose_graph.cache_clear()
    fresh = on.build_pose_graph("FloorPlan402")
    np.testing.assert_array_equal(shipped.next_pose, fresh.next_pose)
    np.testing.assert_array_equal(vis, fresh.visibility("Sink"))
    on.build_pose_graph.cache_clear()
