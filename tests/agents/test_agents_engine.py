"""Batched inference engine: same features as a per-image forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thorgym.agents.backbones import build_backbone
from thorgym.agents.engine import InferenceEngine, resolve_dtype


def _obs(n: int = 4, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _assert_close(out: torch.Tensor, ref: torch.Tensor, rel: float = 1e-3) -> None:
    """Max abs difference within ``rel`` of the reference's scale (random-init features are
    small, so a fixed absolute tolerance would be meaningless)."""
    scale = ref.abs().max().item()
    assert scale > 0
    err = (out.cpu() - ref.cpu()).abs().max().item()
    assert err <= rel * scale, (err, scale)


def _per_image(net: torch.nn.Module, obs: np.ndarray) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return torch.cat(
            [net(torch.from_numpy(o).permute(2, 0, 1).unsqueeze(0).contiguous()) for o in obs]
        )


@pytest.mark.parametrize("name", ["espnetv2_s0.5", "mobilevit_xxs", "resnet18"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_batched_equals_per_image_fp32(name: str, channels_last: bool) -> None:
    torch.manual_seed(0)
    net = build_backbone(name)
    obs = _obs()
    ref = _per_image(net, obs)
    engine = InferenceEngine(net, device="cpu", dtype="float32", channels_last=channels_last)
    out = engine(obs)
    assert out.shape == (4, net.out_dim) and out.dtype == torch.float32
    assert out.device.type == "cpu" and engine.out_dim == net.out_dim
    _assert_close(out, ref)
    # torch NHWC tensor, NCHW tensor and a single image give the same.
    _assert_close(engine(torch.from_numpy(obs)), out, rel=1e-6)
    _assert_close(engine(torch.from_numpy(obs).permute(0, 3, 1, 2)), out)
    _assert_close(engine(obs[1]), out[1:2])


def test_bf16_close_to_fp32() -> None:
    torch.manual_seed(0)
    net = build_backbone("espnetv2_s0.5")
    obs = _obs()
    ref = _per_image(net, obs)
    out = InferenceEngine(net, device="cpu", dtype="bfloat16")(obs)
    assert out.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(out, ref, dim=1)
    assert (cos > 0.99).all(), cos


def test_float_observations_in_unit_range() -> None:
    net = build_backbone("espnetv2_s0.5")
    engine = InferenceEngine(net, device="cpu", dtype="float32")
    obs = _obs()
    _assert_close(engine(obs.astype(np.float32) / 255.0), engine(obs), rel=1e-4)


def test_bad_inputs() -> None:
    engine = InferenceEngine(build_backbone("espnetv2_s0.5"), device="cpu", dtype="float32")
    with pytest.raises(ValueError, match="images"):
        engine(np.zeros((2, 64, 64), dtype=np.uint8))
    with pytest.raises(TypeError):
        engine(np.zeros((2, 64, 64, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))
    assert resolve_dtype("auto", torch.device("cpu")) in (torch.float32, torch.bfloat16)


@pytest.mark.slow
def test_compiled_equals_eager() -> None:
    torch.manual_seed(0)
    net = build_backbone("espnetv2_s0.5")
    obs = _obs(n=2, h=64, w=64)
    ref = _per_image(net, obs)
    out = InferenceEngine(net, device="cpu", dtype="float32", compile=True)(obs)
    _assert_close(out, ref)


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_engine(cuda_graphs: bool) -> None:
    torch.manual_seed(0)
    net = build_backbone("espnetv2_s0.5")
    obs = _obs()
    ref = _per_image(net, obs)
    engine = InferenceEngine(net, device="cuda", dtype="auto", cuda_graphs=cuda_graphs)
    for seed in range(3):  # replays with new data
        o = _obs(seed=seed)
        out = engine(o)
        assert out.device.type == "cuda" and out.dtype == torch.float32
        if seed == 0:
            cos = torch.nn.functional.cosine_similarity(out.cpu(), ref, dim=1)
            assert (cos > 0.99).all(), cos
    fp32 = InferenceEngine(net, device="cuda", dtype="float32", cuda_graphs=cuda_graphs)
    _assert_close(fp32(obs), ref, rel=1e-2)  # TF32 convolutions allowed


def test_tune_keeps_the_faster_dtype_and_matches_it() -> None:
    net = build_backbone("espnetv2_s0.5")
    obs = _obs(4)
    engine = InferenceEngine(net, device="cpu", dtype="tune")
    out = engine(obs)
    if engine.tuned:  # only timed where "auto" would pick a reduced precision
        assert set(engine.tuned) == {"bfloat16", "float32"} and all(v > 0 for v in engine.tuned.values())
        best = max(engine.tuned, key=engine.tuned.get)
        assert str(engine.dtype).removeprefix("torch.") == best
    assert engine.dtype in (torch.float32, torch.bfloat16)
    fixed = InferenceEngine(net, device="cpu", dtype=engine.dtype)(obs)
    torch.testing.assert_close(out, fixed)
    torch.testing.assert_close(engine(obs), out)  # chosen once, then fixed
