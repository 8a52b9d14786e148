"""What the two-agent furniture tasks (FurnLift / FurnMove) need of the simulator.

TeleportObject / ``BatchedSimulator.teleport_object`` (a Television put on the floor, or lifted),
``move_group`` (a lifted object carried by its holders) and makeAgentsVisible. Scenes are
FloorPlan201 (living room: bounds x [-3, 3], z [-2.75, 3], north-east corner x > 0.75, z > 0.75
cut away), small frames.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thorgym.sim import BatchedSimulator, Controller
from thorgym.sim.batch import BLOCKED_AGENT, POINT_NOTHING
from thorgym.sim.world import AGENT_BASE

SCENE = "FloorPlan201"
S = 64
FLOOR_SPOT = (-1.0, 0.33, 0.5)  # the Television standing on free floor, facing +z


def _sim(n: int = 1, agents: int = 2, **kw) -> BatchedSimulator:
    return BatchedSimulator([SCENE] * n, width=S, height=S, agent_count=agents, **kw)


def _index(sim: BatchedSimulator, otype: str, world: int = 0) -> int:
    w = sim.worlds[world]
    return next(i for i, o in enumerate(w.objects) if o.object_type == otype)


def _state(sim: BatchedSimulator, world: int = 0) -> list[tuple]:
    w = sim.worlds[world]
    objects = [(o.object_id, *o.center.tolist(), *o.size.tolist(), o.facing, o.parent) for o in w.objects]
    return [*objects, tuple(sim.pos[world].flatten().tolist())]


def _teleport_agents(sim: BatchedSimulator, spots: list[tuple[float, float, float]], world: int = 0) -> None:
    for a, (x, z, yaw) in enumerate(spots):
        assert bool(sim.teleport([world], [x], [z], [yaw], [0.0], agent=a)[0]), (a, x, z)


# -- teleport_object -------------------------------------------------------------------------
def test_teleport_object_puts_tv_on_floor_where_it_blocks_agents():
    sim = _sim()
    tv = _index(sim, "Television")
    w = sim.worlds[0]
    assert w.objects[tv].parent is not None and w.objects[tv].facing == 1
    ok = sim.teleport_object([0], [tv], *FLOOR_SPOT, facing=0)
    assert ok.tolist() == [True]
    o = w.objects[tv]
    assert o.center.tolist() == list(FLOOR_SPOT)
    assert o.parent is None and o.facing == 0
    assert o.size.tolist() == [1.1, 0.66, 0.1]  # a quarter turn swaps the x and z extents
    assert tv not in [w.index[c] for c in w.contents("TVStand|-02.77|+00.25|+01.95")]
    # Furniture now: an agent walking up to it (along +z at x = -1) stops in front of it.
    _teleport_agents(sim, [(-1.0, 0.0, 0.0), (-2.0, -1.5, 0.0)])
    assert sim.step_nav(torch.tensor([[0, -1]])).tolist() == [[True, True]]  # to z = 0.25
    assert sim.step_nav(torch.tensor([[0, -1]])).tolist() == [[False, True]]
    assert int(sim._boxes.inst[0, int(sim.last_blocker[0, 0])]) == tv


@pytest.mark.parametrize(
    "where,pose,blocker",
    [
        ("into a wall", (-3.0, 0.33, 0.0, 0), "outside the room"),
        ("into the wall at the cut corner", (0.65, 1.5, 0.5, 1), "a wall"),
        ("into the garbage can", (-2.9, 0.33, 0.0, 1), "GarbageCan|-02.83|+00.21|+00.62"),
        ("into the sofa", (0.3, 0.4, 1.95, 1), "Sofa|+00.30|+00.40|+01.95"),
        ("onto the coffee table's contents", (-0.9, 0.6, -0.75, 0), "CoffeeTable|-00.90|+00.23|-00.75"),
        ("onto agent 0", (-1.25, 0.33, -2.25, 0), "Agent 0"),
        ("out of the room", (5.0, 0.33, 0.0, 0), "outside the room"),
        ("into the L-shaped cut", (2.0, 0.33, 2.0, 0), "outside the room"),
        ("below the floor", (-1.0, 0.1, 0.5, 0), "outside the room"),
        ("through the ceiling", (-1.0, 2.5, 0.5, 0), "outside the room"),
    ],
)
def test_teleport_object_refused_changes_nothing(where, pose, blocker):
    sim = _sim()
    tv = _index(sim, "Television")
    x, y, z, f = pose
    assert sim.object_blocker(0, tv, x, y, z, f) == blocker, where
    before, version = _state(sim), sim.worlds[0].version
    assert sim.teleport_object([0], [tv], x, y, z, f).tolist() == [False], where
    assert _state(sim) == before and sim.worlds[0].version == version
    # forceAction's path: no check, the object goes there anyway.
    assert sim.teleport_object([0], [tv], x, y, z, f, check=False).tolist() == [True]
    assert sim.worlds[0].objects[tv].center.tolist() == [x, y, z]


def test_object_above_an_agents_head_does_not_touch_it():
    sim = _sim()
    tv = _index(sim, "Television")
    x, z = sim.agent_poses(0)[0, :2].tolist()
    assert sim.object_blocker(0, tv, x, 1.3, z, 0) == "Agent 0"  # at head height
    assert sim.object_blocker(0, tv, x, 2.2, z, 0) is None  # 1.87–2.53 m: above it
    assert sim.object_blocker(0, tv, x, 1.3, z, 0, ignore_agents=[0]) == "Agent 1"  # 0.25 m west
    assert sim.object_blocker(0, tv, x, 1.3, z, 0, ignore_agents=[0, 1]) is None


def test_facing_turns_swap_extents_and_metadata_follows():
    with Controller(scene=SCENE, width=S, height=S) as c:
        tv = next(o for o in c.last_event.metadata["objects"] if o["objectType"] == "Television")
        oid = tv["objectId"]
        assert tv["rotation"]["y"] == 90.0
        sizes = {}
        for deg in (0, 90, 180, 270, -90, 360):
            ev = c.step(
                "TeleportObject",
                objectId=oid,
                position=dict(x=-1.0, y=0.33, z=0.5),
                rotation=dict(x=0, y=deg, z=0),
            )
            assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
            o = next(o for o in ev.metadata["objects"] if o["objectId"] == oid)
            assert o["rotation"] == {"x": 0.0, "y": float(deg % 360), "z": 0.0}
            assert o["position"] == {"x": -1.0, "y": 0.33, "z": 0.5}
            bb = o["axisAlignedBoundingBox"]
            assert bb["center"] == o["position"]
            sizes[deg % 360] = (bb["size"]["x"], bb["size"]["y"], bb["size"]["z"])
            xs = sorted({p[0] for p in bb["cornerPoints"]})
            assert xs == pytest.approx([-1.0 - bb["size"]["x"] / 2, -1.0 + bb["size"]["x"] / 2])
            assert o["parentReceptacles"] is None
        assert sizes[0] == sizes[180] == pytest.approx((1.1, 0.66, 0.1))
        assert sizes[90] == sizes[270] == pytest.approx((0.1, 0.66, 1.1))


def test_contents_move_along_and_turn_with_their_receptacle():
    sim = _sim(n=2)
    stand = _index(sim, "TVStand")
    w0, w1 = sim.worlds
    s = w0.objects[stand]
    kids = sorted(w0.index[k] for k in w0.contents(s.object_id))
    assert {w0.objects[k].object_type for k in kids} == {"Television", "RemoteControl"}
    rel = {k: w0.objects[k].center - s.center for k in kids}
    sizes = {k: w0.objects[k].size.copy() for k in kids}
    target = np.array([-1.0, 0.25, 0.5])
    # World 0: moved, same facing; world 1: moved and turned a quarter (facing 1 -> 2).
    ok = sim.teleport_object([0, 1], [stand, stand], target[0], target[1], target[2], [1, 2])
    assert ok.tolist() == [True, True]
    for k in kids:
        assert w0.objects[k].center == pytest.approx(target + rel[k])
        assert w0.objects[k].size.tolist() == sizes[k].tolist()
        assert w0.objects[k].parent == s.object_id  # still on the stand
        rx, ry, rz = rel[k]
        assert w1.objects[k].center == pytest.approx(target + np.array([rz, ry, -rx]))
        assert w1.objects[k].size.tolist() == sizes[k][[2, 1, 0]].tolist()
        assert w1.objects[k].facing == (1 + 1) % 4  # the Television faced the room (+x): now -z
    assert w1.objects[stand].size.tolist() == [1.4, 0.5, 0.45]


def test_teleport_object_bad_arguments_raise_value_error():
    sim = _sim()
    tv = _index(sim, "Television")
    with pytest.raises(ValueError, match="facing"):
        sim.teleport_object([0], [tv], *FLOOR_SPOT, facing=4)
    with pytest.raises(ValueError, match="object index"):
        sim.teleport_object([0], [999], *FLOOR_SPOT)
    with pytest.raises(ValueError, match="world index"):
        sim.teleport_object([3], [tv], *FLOOR_SPOT)
    with pytest.raises(ValueError, match="x must be one value or one per world"):
        sim.teleport_object([0], [tv], [1.0, 2.0], 0.33, 0.5)
    with pytest.raises(ValueError, match="finite"):
        sim.teleport_object([0], [tv], float("nan"), 0.33, 0.5)
    assert sim.teleport_object([0], [-1], *FLOOR_SPOT).tolist() == [False]  # -1: nothing


# -- move_group ------------------------------------------------------------------------------
def _lifted(n: int = 1, facing: int = 1) -> tuple[BatchedSimulator, int]:
    """Agents at (-2, 0) and (-1, 0) facing +z with the Television lifted 1.3 m between them."""
    sim = _sim(n=n)
    tv = _index(sim, "Television")
    for i in range(n):
        _teleport_agents(sim, [(-2.0, 0.0, 0.0), (-1.0, 0.0, 0.0)], world=i)
    assert sim.teleport_object(range(n), tv, -1.5, 1.3, 0.0, facing).all()
    return sim, tv


def test_move_group_carries_object_with_its_holders():
    sim, tv = _lifted()
    o = sim.worlds[0].objects[tv]
    ok = sim.move_group([0], [0, 1], [tv], 0.0, 0.25)
    assert ok.tolist() == [True]
    assert sim.pos[0, :, 2].tolist() == [0.25, 0.25]
    assert sim.pos[0, :, 0].tolist() == [-2.0, -1.0]
    assert o.center.tolist() == pytest.approx([-1.5, 1.3, 0.25])
    assert sim.move_group([0], [0, 1], [tv], [-0.25], [0.0]).tolist() == [True]
    assert o.center.tolist() == pytest.approx([-1.75, 1.3, 0.25])
    assert sim.pos[0, :, 0].tolist() == [-2.25, -1.25]


def test_move_group_is_all_or_nothing():
    sim, tv = _lifted()
    o = sim.worlds[0].objects[tv]
    # Towards the north wall (z = 3): the agents could reach z = 2.75, but the Television
    # (z extent 1.1) leaves the room once its centre passes 2.45, so the group stops at 2.25.
    moved = 0
    while bool(sim.move_group([0], [0, 1], [tv], 0.0, 0.25)[0]):
        moved += 1
    assert moved == 9 and o.center[2] == pytest.approx(2.25)
    before = _state(sim)
    assert sim.move_group([0], [0, 1], [tv], 0.0, 0.25).tolist() == [False]
    assert _state(sim) == before
    # Towards the west wall (x = -3): agent 0 at x = -2 stops at -2.75 (a radius from the
    # wall); the object would be fine, the move is refused for both.
    sim, tv = _lifted()
    assert sim.move_group([0], [0, 1], [tv], -0.75, 0.0).tolist() == [True]
    before = _state(sim)
    assert sim.move_group([0], [0, 1], [tv], -0.25, 0.0).tolist() == [False]
    assert _state(sim) == before


def test_carried_object_does_not_block_its_carriers_but_blocks_others():
    # Facing 0: the Television spans x -2.05..-0.95, reaching into both holders' bodies.
    sim = _sim()
    tv = _index(sim, "Television")
    _teleport_agents(sim, [(-2.0, 0.0, 0.0), (-1.0, 0.0, 0.0)])
    assert sim.object_blocker(0, tv, -1.5, 1.3, 0.0, 0) == "Agent 0"
    assert sim.teleport_object([0], [tv], -1.5, 1.3, 0.0, 0, check=False).all()
    assert sim.move_group([0], [0, 1], [tv], 0.0, 0.25).tolist() == [True]
    # Alone, agent 0 stands in the furniture's way: MoveAhead (+z) is blocked by the Television.
    assert sim.step_nav(torch.tensor([[0, -1]])).tolist() == [[False, True]]
    assert int(sim._boxes.inst[0, int(sim.last_blocker[0, 0])]) == tv
    # Agent 1 outside the group is in the object's way.
    before = _state(sim)
    assert sim.move_group([0], [0], [tv], 0.0, 0.25).tolist() == [False]
    assert _state(sim) == before


def test_move_group_sweeps_long_moves_and_checks_other_agents():
    sim, tv = _lifted()
    # 1.5 m towards -z ends at z = -1.5, past the coffee table (z -1.05..-0.45 at x -1.4..-0.4)
    # that agent 1 (x = -1) would walk through: refused although the end point is free.
    assert sim.position_free(0, -1.0, -1.5, agent=1)
    assert sim.move_group([0], [0, 1], [tv], 0.0, -1.5).tolist() == [False]
    # A group without agent 1 cannot walk agent 0 onto it.
    sim2 = _sim()
    _teleport_agents(sim2, [(-2.0, 0.0, 0.0), (-1.5, 0.0, 0.0)])
    assert sim2.move_group([0], [0], [-1], 0.5, 0.0).tolist() == [False]
    assert sim2.move_group([0], [0, 1], [-1], 0.5, 0.0).tolist() == [True]  # together they may


def test_move_group_bad_arguments_raise_value_error():
    sim, tv = _lifted()
    with pytest.raises(ValueError, match="agent"):
        sim.move_group([0], [0, 2], [tv], 0.0, 0.25)
    with pytest.raises(ValueError, match="only once"):
        sim.move_group([0], [0, 0], [tv], 0.0, 0.25)
    with pytest.raises(ValueError, match="object index"):
        sim.move_group([0], [0, 1], [500], 0.0, 0.25)
    with pytest.raises(ValueError, match="dz"):
        sim.move_group([0], [0, 1], [tv], 0.0, [0.25, 0.5])


def test_batched_move_group_matches_single_worlds():
    moves = [(0.0, 0.25), (0.0, -1.5), (-0.75, 0.0)]
    batched, tv = _lifted(n=3)
    got = batched.move_group([0, 1, 2], [0, 1], [tv] * 3, [m[0] for m in moves], [m[1] for m in moves])
    for i, (dx, dz) in enumerate(moves):
        single, _ = _lifted(n=1)
        want = single.move_group([0], [0, 1], [tv], dx, dz)
        assert bool(got[i]) == bool(want[0]), (dx, dz)
        assert _state(batched, i) == _state(single, 0)
    assert got.tolist() == [True, False, True]


# -- makeAgentsVisible -----------------------------------------------------------------------
def test_invisible_agents_are_not_drawn_but_still_block():
    spots = [(-1.0, 0.0, 0.0), (-1.0, 0.75, 180.0)]  # facing each other, 0.75 m apart
    seen = _sim(agents=2)
    hidden = _sim(agents=2, agents_visible=False)
    alone = _sim(agents=1)
    for sim in (seen, hidden):
        _teleport_agents(sim, spots)
    _teleport_agents(alone, spots[:1])
    s, h, a = seen.observe(), hidden.observe(), alone.observe()
    partner = AGENT_BASE - 1
    assert (s.instance[0, 0] == partner).any()
    assert not (h.instance <= AGENT_BASE).any()
    # Agent 0's view with its partner hidden is the view of an agent alone in the world.
    assert torch.equal(h.rgb[0, 0], a.rgb[0, 0]) and not torch.equal(s.rgb[0, 0], a.rgb[0, 0])
    assert torch.equal(h.depth[0, 0], a.depth[0, 0]) and torch.equal(h.instance[0, 0], a.instance[0, 0])
    assert torch.equal(h.visible[0, 0], a.visible[0, 0])
    assert int(seen.object_at(0.5, 0.5).code[0]) == partner
    hit = hidden.object_at(0.5, 0.5)
    assert int(hit.code[0]) != partner and int(hit.code[0]) == int(alone.object_at(0.5, 0.5).code[0])
    assert int(seen.object_at(0.5, 0.5).reason[0]) == POINT_NOTHING
    # Still solid: three MoveAheads would put agent 0 onto agent 1.
    for expected in (True, True, False):
        assert bool(hidden.step_nav(torch.tensor([[0, -1]]))[0, 0]) is expected
    assert int(hidden.last_error[0, 0]) == BLOCKED_AGENT
    # The setter shows them again.
    hidden.agents_visible = True
    assert (hidden.observe().instance[0, 0] == partner).any()
    with pytest.raises(ValueError, match="makeAgentsVisible"):
        hidden.agents_visible = 1
    with pytest.raises(ValueError, match="makeAgentsVisible"):
        _sim(agents_visible="no")


def test_controller_make_agents_visible_and_agent1_teleport():
    def partners(ev):  # the agents in each view (colours cover the whole scene, as AI2-THOR's)
        def shown(e):
            colors = np.unique(e.instance_segmentation_frame.reshape(-1, 3), axis=0)
            return {e.color_to_object_id.get(tuple(int(v) for v in c)) for c in colors}

        return [{"agent0", "agent1"} & shown(e) for e in ev.events]

    with Controller(scene=SCENE, width=S, height=S, agentCount=2, renderInstanceSegmentation=True) as c:
        assert c.initialization_parameters["makeAgentsVisible"] is True
        ev = c.step(
            "TeleportFull",
            position=dict(x=-1.0, y=0.9, z=0.75),
            rotation=dict(x=0, y=180, z=0),
            horizon=0,
            standing=True,
            agentId=1,
        )
        assert ev.metadata["lastActionSuccess"] and ev.metadata["agentId"] == 1
        assert ev.events[1].metadata["agent"]["position"] == {"x": -1.0, "y": 0.9009995, "z": 0.75}
        ev = c.step("Teleport", position=dict(x=-1.0, y=0.9, z=0.0), rotation=0, agentId=0)
        assert ev.events[0].metadata["agent"]["position"]["z"] == 0.0
        assert partners(ev) == [{"agent1"}, {"agent0"}]
        ev = c.reset(makeAgentsVisible=False)
        assert c.initialization_parameters["makeAgentsVisible"] is False
        c.step("Teleport", position=dict(x=-1.0, y=0.9, z=0.75), rotation=180, agentId=1)
        ev = c.step("Teleport", position=dict(x=-1.0, y=0.9, z=0.0), rotation=0, agentId=0)
        assert partners(ev) == [set(), set()]
        assert c.step("MoveAhead", agentId=0).metadata["lastActionSuccess"]
        assert c.step("MoveAhead", agentId=0).metadata["lastActionSuccess"]  # a neighbour now
        ev = c.step("MoveAhead", agentId=0)
        assert not ev.metadata["lastActionSuccess"] and "Agent 1" in ev.metadata["errorMessage"]
        with pytest.raises(ValueError, match="makeAgentsVisible"):
            c.reset(makeAgentsVisible="yes")


# -- the Controller's TeleportObject -----------------------------------------------------------
def test_controller_teleport_object_messages_and_force():
    with Controller(scene=SCENE, width=S, height=S) as c:
        oid = next(o["objectId"] for o in c.last_event.metadata["objects"] if o["objectType"] == "Television")
        ev = c.step("TeleportObject", objectId="Television|+9.99|+9.99|+9.99", position=dict(x=0, y=1, z=0))
        assert not ev.metadata["lastActionSuccess"]
        assert ev.metadata["errorMessage"] == (
            "objectId: Television|+9.99|+9.99|+9.99 is not the objectId on any object in the scene!"
        )
        before = c.last_event.metadata["objects"]
        ev = c.step(
            "TeleportObject", objectId=oid, position=dict(x=0.3, y=0.4, z=1.95), rotation=dict(x=0, y=90, z=0)
        )
        assert not ev.metadata["lastActionSuccess"]
        assert "Sofa|+00.30|+00.40|+01.95" in ev.metadata["errorMessage"]
        assert ev.metadata["objects"] == before
        ev = c.step("TeleportObject", objectId=oid, position=dict(x=-1.25, y=0.33, z=-2.25), rotation=0)
        assert not ev.metadata["lastActionSuccess"] and "Agent 0" in ev.metadata["errorMessage"]
        ev = c.step(
            "TeleportObject", objectId=oid, position=dict(x=0.3, y=0.4, z=1.95), rotation=90, forceAction=True
        )
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        tv = next(o for o in ev.metadata["objects"] if o["objectId"] == oid)
        assert tv["position"] == {"x": 0.3, "y": 0.4, "z": 1.95}
        # A held object stays in the hand.
        ev = c.step(
            "PickupObject",
            objectId=next(o["objectId"] for o in ev.metadata["objects"] if o["objectType"] == "Book"),
            forceAction=True,
        )
        assert ev.metadata["lastActionSuccess"], ev.metadata["errorMessage"]
        book = ev.metadata["inventoryObjects"][0]["objectId"]
        ev = c.step("TeleportObject", objectId=book, position=dict(x=-1.0, y=0.1, z=0.5))
        assert not ev.metadata["lastActionSuccess"] and "held by Agent 0" in ev.metadata["errorMessage"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(position=dict(x=0, y=1, z=0), rotation=dict(x=0, y=45, z=0)), "multiple of 90"),
        (dict(position=dict(x=0, y=1, z=0), rotation=30.0), "multiple of 90"),
        (dict(position=dict(x=0, y=1, z=0), rotation=dict(x=90, y=0, z=0)), "rotation"),
        (dict(position=dict(x=0, z=0)), "position"),
        (dict(position=dict(x=0, y=float("inf"), z=0)), "position"),
        (dict(position=dict(x=0, y=1, z=0), scale=2), "scale"),
        (dict(rotation=90), "position"),
    ],
)
def test_controller_teleport_object_bad_arguments(kwargs, match):
    with Controller(scene=SCENE, width=32, height=32) as c:
        oid = next(o["objectId"] for o in c.last_event.metadata["objects"] if o["objectType"] == "Television")
        with pytest.raises(ValueError, match=match):
            c.step("TeleportObject", objectId=oid, **kwargs)


def test_batched_teleport_object_matches_controllers():
    targets = [  # (x, y, z, rotation y): free floor, the sofa, lifted, out of the room
        (-1.0, 0.33, 0.5, 0),
        (0.3, 0.4, 1.95, 90),
        (-1.5, 1.3, -1.75, 270),
        (5.0, 0.33, 0.0, 180),
    ]
    sim = _sim(n=len(targets), agents=1, render_instance_segmentation=True, render_depth=True)
    tv = _index(sim, "Television")
    got = sim.teleport_object(
        range(len(targets)), tv, *([t[k] for t in targets] for k in range(3)), [t[3] // 90 for t in targets]
    )
    out = sim.observe()
    assert got.tolist() == [True, False, True, False]
    for i, (x, y, z, deg) in enumerate(targets):
        with Controller(scene=SCENE, width=S, height=S) as c:
            oid = c.last_event.metadata["objects"][tv]["objectId"]
            ev = c.step("TeleportObject", objectId=oid, position=dict(x=x, y=y, z=z), rotation=deg)
            assert ev.metadata["lastActionSuccess"] == bool(got[i])
            assert _state(c.simulator) == _state(sim, i)
            assert np.array_equal(ev.frame, out.rgb[i, 0].numpy())


def test_lifting_and_carrying_is_deterministic():
    def run() -> tuple:
        sim, tv = _lifted(n=2)
        oks = [sim.move_group([0, 1], [0, 1], [tv, tv], [0.0, -0.25], [0.25, 0.0]).tolist() for _ in range(3)]
        out = sim.observe()
        return oks, _state(sim, 0), _state(sim, 1), out.rgb.numpy().tobytes(), out.visible.numpy().tobytes()

    assert run() == run()
