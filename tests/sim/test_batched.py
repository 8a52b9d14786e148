"""The batched simulator: same results as N single Controllers, tensors on the device."""

import numpy as np
import pytest
import torch

from thorgym.sim import NAV_ACTIONS, BatchedSimulator, Controller

SCENES = ["FloorPlan2", "FloorPlan208", "FloorPlan317", "FloorPlan425"]


def test_batched_equals_single_controllers():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 8, size=(12, len(SCENES)))
    sim = BatchedSimulator(
        SCENES,
        width=48,
        height=40,
        render_depth=True,
        render_instance_segmentation=True,
        rotate_step_degrees=45,
    )
    singles = [
        Controller(
            scene=s,
            width=48,
            height=40,
            renderDepthImage=True,
            renderInstanceSegmentation=True,
            rotateStepDegrees=45,
        )
        for s in SCENES
    ]
    for row in actions:
        out = sim.step(torch.as_tensor(row))
        for i, c in enumerate(singles):
            ev = c.step(NAV_ACTIONS[row[i]])
            assert bool(out.success[i, 0]) == ev.metadata["lastActionSuccess"]
            np.testing.assert_array_equal(out.rgb[i, 0].numpy(), ev.frame)
            np.testing.assert_array_equal(out.depth[i, 0].numpy(), ev.depth_frame)
            vis = {o["objectId"] for o in ev.metadata["objects"] if o["visible"]}
            world = sim.worlds[i]
            bvis = {
                world.objects[k].object_id
                for k in np.nonzero(out.visible[i, 0].numpy())[0]
                if k < len(world.objects)
            }
            assert bvis == vis
            assert ev.metadata["agent"]["position"]["x"] == pytest.approx(float(sim.pos[i, 0, 0]))


def test_batched_shapes_and_reset():
    sim = BatchedSimulator(SCENES[:2], width=64, height=64, agent_count=2)
    out = sim.step(torch.tensor([[0, 4], [5, -1]]))
    assert out.rgb.shape == (2, 2, 64, 64, 3) and out.rgb.dtype == torch.uint8
    assert out.depth.shape == (2, 2, 64, 64) and out.depth.dtype == torch.float32
    assert out.visible.shape[:2] == (2, 2) and out.success.shape == (2, 2)
    start = sim.pos.clone()
    sim.reset_world(0)
    fresh = BatchedSimulator(SCENES[:1], width=64, height=64, agent_count=2)
    assert torch.equal(sim.pos[0], fresh.pos[0])
    assert torch.equal(sim.pos[1], start[1])
    with pytest.raises(ValueError, match="actions must have shape"):
        sim.step(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="action indices"):
        sim.step(torch.tensor([99, 0]))


def test_batched_is_deterministic():
    outs = []
    for _ in range(2):
        sim = BatchedSimulator(SCENES, width=32, height=32)
        for a in [0, 5, 0, 7, 0, 4]:
            o = sim.step(torch.full((len(SCENES),), a))
        outs.append(o)
    assert torch.equal(outs[0].rgb, outs[1].rgb) and torch.equal(outs[0].depth, outs[1].depth)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    cpu = BatchedSimulator(SCENES, width=64, height=64)
    gpu = BatchedSimulator(SCENES, width=64, height=64, device="cuda")
    for a in [0, 5, 0, 6]:
        oc, og = cpu.step(torch.full((4,), a)), gpu.step(torch.full((4,), a))
    assert og.rgb.device.type == "cuda"
    assert (oc.rgb.int() - og.rgb.cpu().int()).abs().float().mean() < 1.0
    torch.testing.assert_close(oc.depth, og.depth.cpu(), atol=1e-3, rtol=1e-3)


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present on this machine")
    with pytest.raises(ValueError, match="CUDA is not available"):
        BatchedSimulator(SCENES[:1], device="cuda")


def test_teleport_batched_equals_one_by_one():
    scenes = ["FloorPlan2", "FloorPlan208", "FloorPlan317"]
    batched = BatchedSimulator(scenes, width=48, height=48)
    single = BatchedSimulator(scenes, width=48, height=48)
    # A reachable position of each world other than the start, with a new yaw and horizon.
    targets = [batched.reachable_positions(i)[3] for i in range(len(scenes))]
    xs, zs = [t[0] for t in targets], [t[1] for t in targets]
    yaws, horizons = [90.0, 225.0, -45.0], [30.0, -30.0, 60.0]
    ok = batched.teleport(range(3), xs, zs, yaws, horizons)
    assert ok.tolist() == [True, True, True]
    for i in (2, 0, 1):
        assert single.teleport([i], [xs[i]], [zs[i]], [yaws[i]], [horizons[i]]).item()
    assert torch.equal(batched.agent_poses(), single.agent_poses())
    assert torch.equal(batched.pos, single.pos)
    expected = torch.tensor([[x, z, y % 360, h] for x, z, y, h in zip(xs, zs, yaws, horizons, strict=True)])
    torch.testing.assert_close(batched.agent_poses(), expected)
    assert torch.equal(batched.visible(), single.visible())
    fresh = BatchedSimulator(scenes, width=48, height=48)
    fresh.teleport(range(3), xs, zs, yaws, horizons, check=False)
    assert torch.equal(fresh.visible(), batched.visible())


def test_teleport_blocked_pose_fails_and_leaves_state_unchanged():
    sim = BatchedSimulator(["FloorPlan2", "FloorPlan208"], width=48, height=48)
    before = sim.agent_poses().clone()
    sim.visible()
    x0, z0, _, _ = sim.worlds[0].spec.bounds
    free = sim.reachable_positions(1)[1]
    # World 0: outside the room (a wall); world 1: a free spot but a horizon beyond the limit.
    ok = sim.teleport([0, 1], [x0 - 1.0, free[0]], [z0 - 1.0, free[1]], [90.0, 90.0], [0.0, 90.0])
    assert ok.tolist() == [False, False]
    assert torch.equal(sim.agent_poses(), before)
    # Only world 1's pose is applied when world 0's is blocked.
    ok = sim.teleport([0, 1], [x0 - 1.0, free[0]], [z0 - 1.0, free[1]], None, [0.0, 30.0])
    assert ok.tolist() == [False, True]
    poses = sim.agent_poses()
    assert torch.equal(poses[0], before[0])
    assert poses[1].tolist() == pytest.approx([free[0], free[1], float(before[1, 2]), 30.0])
    with pytest.raises(ValueError, match="one value per world"):
        sim.teleport([0, 1], [0.0], [0.0])
