"""agents/backbones/compress.py and benchmarks/compress.py: pruning, low-rank, int8, mAP."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from thorgym.agents.backbones import build_backbone, count_macs, count_params
from thorgym.agents.backbones.compress import (
    factorize_lowrank,
    finetune,
    load_compressed,
    mean_average_precision,
    prune_channels,
    quantize_int8,
    save_compressed,
)
from thorgym.agents.engine import InferenceEngine
from thorgym.agents.metrics import per_class_average_precision


def _model(name: str, num_classes: int = 0, seed: int = 0) -> torch.nn.Module:
    """A backbone with non-trivial BatchNorm statistics (as after training), in eval mode."""
    torch.manual_seed(seed)
    m = build_backbone(name, num_classes)
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 1.5 + 0.5)
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m.eval()


def _images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("name", ["espnetv2_s0.5", "cnn_small", "resnet18"])
def test_prune_shrinks_and_keeps_interface(name: str) -> None:
    m = _model(name, num_classes=5)
    p = prune_channels(m, 0.5)
    assert count_params(p) < 0.8 * count_params(m)
    assert count_macs(p, 64, 64) < 0.8 * count_macs(m, 64, 64)
    assert p.out_dim == m.out_dim == 5 and p.name == m.name
    x = _images(2)
    p.train()
    out = p(x)
    assert out.shape == (2, 5)
    out.square().sum().backward()
    assert all(q.grad is not None for q in p.parameters() if q.requires_grad)
    assert count_params(m) == count_params(_model(name, num_classes=5))  # source untouched


@pytest.mark.parametrize("name", ["espnetv2_s0.5", "cnn_small", "resnet18"])
def test_prune_keep_one_is_identity(name: str) -> None:
    m = _model(name)
    p = prune_channels(m, 1.0)
    x = _images(2)
    assert count_params(p) == count_params(m)
    torch.testing.assert_close(p(x), m(x))


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, True, "0.5", float("nan")])
def test_bad_ratios_raise(bad: object) -> None:
    m = _model("cnn_small")
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        prune_channels(m, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        factorize_lowrank(m, bad)  # type: ignore[arg-type]


def test_prune_unsupported_family_names_the_alternative() -> None:
    from thorgym.agents.backbones import ImageBackbone

    hand = ImageBackbone(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Flatten()), num_features=4)
    with pytest.raises(ValueError, match="factorize_lowrank"):
        prune_channels(hand, 0.5)
    with pytest.raises(TypeError, match="ImageBackbone"):
        prune_channels(torch.nn.Linear(2, 2), 0.5)


def test_lowrank_full_rank_matches_and_low_rank_shrinks() -> None:
    m = _model("espnetv2_s0.5", num_classes=7)
    x = _images(2)
    full = factorize_lowrank(m, 1.0, include_head=True, only_if_smaller=False)
    torch.testing.assert_close(full(x), m(x), rtol=1e-4, atol=1e-4)
    low = factorize_lowrank(m, 0.25)
    assert count_macs(low, 64, 64) < count_macs(m, 64, 64)
    assert count_params(low) < count_params(m)
    assert low(x).shape == (2, 7)
    # a rank that would not save multiply-adds leaves the layers alone
    assert count_params(factorize_lowrank(m, 1.0)) == count_params(m)


def test_int8_close_to_fp32_and_runs_in_engine() -> None:
    m = _model("espnetv2_s0.5")
    calib = _images(16, seed=1)
    q = quantize_int8(m, calib, calibration_batch=8)
    x = _images(8, seed=2)
    ref, out = m(x), q(x)
    assert out.shape == ref.shape and q.out_dim == m.out_dim
    rel = float((out - ref).norm() / ref.norm())
    corr = float(torch.corrcoef(torch.stack([out.flatten(), ref.flatten()]).detach())[0, 1])
    assert rel < 0.1 and corr > 0.99, (rel, corr)
    engine = InferenceEngine(q, "cpu", dtype="float32")
    feats = engine(x.permute(0, 2, 3, 1).numpy())  # NHWC uint8, as environments give
    torch.testing.assert_close(feats, out, rtol=0, atol=1e-5)
    with pytest.raises(TypeError, match="float"):
        prune_channels(q, 0.5)
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(m, [])


def test_pruned_model_runs_in_engine() -> None:
    p = prune_channels(_model("espnetv2_s0.5"), 0.5)
    obs = np.asarray(_images(3).permute(0, 2, 3, 1))
    engine = InferenceEngine(p, "cpu", dtype="float32")
    assert engine(obs).shape == (3, engine.out_dim) == (3, 256 * 4)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    m = _model("espnetv2_s0.5", num_classes=3)
    c = factorize_lowrank(prune_channels(m, 0.5), 0.25)
    path = save_compressed(c, tmp_path / "sub" / "c.pt")
    back = load_compressed(path)
    x = _images(2)
    torch.testing.assert_close(back(x), c.eval()(x))
    assert back.compression == c.compression and count_params(back) == count_params(c)
    with pytest.raises(TypeError, match="quantize_int8"):
        save_compressed(quantize_int8(_model("cnn_small"), _images(4)), tmp_path / "q.pt")
    with pytest.raises(ValueError, match="load_backbone"):
        torch.save({"format": "other"}, tmp_path / "x.pt")
        load_compressed(tmp_path / "x.pt")


def test_average_precision_and_map() -> None:
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.2, 0.3], [0.1, 0.2]])
    labels = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = per_class_average_precision(labels, scores)
    assert ap[0].item() == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert np.isnan(ap[1])
    m = _model("cnn_small", num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        mean_average_precision(m, _images(4), torch.ones(4, 3))
    assert 0.0 < mean_average_precision(m, _images(4), labels) <= 1.0


def test_finetune_learns_a_trivial_task() -> None:
    """Labels = whether the image is bright: a few steps must beat chance clearly."""
    g = torch.Generator().manual_seed(0)
    bright = torch.rand(64, generator=g) < 0.5
    x = torch.where(bright[:, None, None, None], 200, 40).to(torch.uint8).expand(64, 3, 64, 64)
    x = (x.to(torch.int16) + torch.randint(-30, 30, x.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    y = torch.stack([bright, ~bright], 1).float()
    m = prune_channels(_model("cnn_small", num_classes=2), 0.5)
    losses = finetune(m, x, y, steps=30, batch_size=16, lr=3e-3)
    assert len(losses) == 30 and not m.training
    assert mean_average_precision(m, x, y) > 0.9


def test_bench_records_with_task(tmp_path: Path) -> None:
    """benchmarks/compress.run on an empty task folder: a tiny `thorgym pretrain` run is made
    there, its classifier is the base model and its held-out frames give every variant's mAP."""
    from thorgym.benchmarks.compress import format_table, run

    tiny = {"train_frames": 48, "heldout_frames": 32, "epochs": 1, "batch_size": 16}
    buf = io.StringIO()
    recs = run(
        "cnn_small",
        task_dir=tmp_path,
        sizes=((64, 64),),
        batch=4,
        finetune_steps=2,
        pretrain=tiny,
        rounds=1,
        repeats=1,
        as_json=True,
        out=buf,
        log=io.StringIO(),
    )
    assert json.loads(buf.getvalue()) == recs  # pretraining's prints stay off the results stream
    variants = [r["variant"] for r in recs]
    assert variants == ["fp32", "bf16-autocast", "pruned-0.5", "lowrank-0.25", "int8", "pruned-0.5+int8"]
    by = {r["variant"]: r for r in recs}
    assert by["fp32"]["speedup"] == 1.0
    assert by["pruned-0.5"]["params"] < by["fp32"]["params"]
    assert by["int8"]["model_bytes"] < 0.5 * by["fp32"]["model_bytes"]
    assert all(0.0 <= r["map"] <= 1.0 for r in recs)
    assert "map_before_finetune" in by["pruned-0.5"]
    # The base model is the pretraining run's classifier, scored on its held-out frames.
    assert (tmp_path / "classifier.pt").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["backbone"] == "cnn_small" and metrics["heldout_frames"] == 32
    assert by["fp32"]["map"] == pytest.approx(metrics["map_pretrained"], abs=1e-3)
    assert len(list((tmp_path / "compress").glob("cnn_small-*-ft2-seed0-*.pt"))) == 2
    assert "pruned-0.5+int8" in format_table(recs)
    with pytest.raises(ValueError, match="keep_ratio"):
        run("cnn_small", keep_ratio=2.0, out=io.StringIO())
    with pytest.raises(ValueError, match="--backbone cnn_small"):
        run("espnetv2_s0.5", task_dir=tmp_path, out=io.StringIO(), log=io.StringIO())


def test_bench_uses_an_existing_pretrain_run(tmp_path: Path) -> None:
    """A `thorgym pretrain --out DIR` folder is used as is: no new pretraining, its frames."""
    from thorgym.benchmarks.compress import prepare_task
    from thorgym.datasets.pretrain_frames import LABEL_TYPES
    from thorgym.pretrain import PretrainArgs, pretrain

    pretrain(
        PretrainArgs(
            out=tmp_path, train_frames=40, heldout_frames=24, epochs=1, batch_size=16, progress=False
        )
    )
    stamp = (tmp_path / "classifier.pt").stat().st_mtime_ns
    data, model = prepare_task(tmp_path, "cnn_small", log=io.StringIO())
    assert (tmp_path / "classifier.pt").stat().st_mtime_ns == stamp
    assert data["train_images"].shape == (40, 3, 64, 64) and data["train_images"].dtype == torch.uint8
    assert data["test_targets"].shape == (24, len(LABEL_TYPES))
    assert model.num_classes == len(LABEL_TYPES) and not model.training


def test_cli_bench_compress_json() -> None:
    from typer.testing import CliRunner

    from thorgym.cli import app

    res = CliRunner().invoke(
        app,
        [
            "bench",
            "compress",
            "--json",
            "--backbone",
            "cnn_small",
            "--sizes",
            "64",
            "--batch",
            "2",
            "--rounds",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout.strip().splitlines()[-1])
    assert {r["variant"] for r in recs} >= {"fp32", "pruned-0.5", "int8"}
    assert all("map" not in r or r["map"] is None for r in recs)
    bad = CliRunner().invoke(app, ["bench", "compress", "--keep", "0"])
    assert bad.exit_code != 0 and "keep_ratio" in bad.output
