"""save_backbone / load_backbone round trip and error cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thorgym.agents.backbones import (
    build_backbone,
    load_backbone,
    load_backbone_state,
    save_backbone,
)


def _randomize_bn(net: torch.nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("name", ["espnetv2_s0.5", "mobilevit_xxs", "resnet18"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    net = build_backbone(name, num_classes=5).eval()
    _randomize_bn(net)
    path = save_backbone(net, tmp_path / "sub" / "bb.pt")
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["bb.pt"]  # no temp files left
    loaded = load_backbone(name, path)
    assert loaded.out_dim == 5 and not loaded.training
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    # A classification checkpoint gives a feature model: head dropped.
    feats = load_backbone(name, path, num_classes=0)
    with torch.no_grad():
        torch.testing.assert_close(feats(x), net.forward_features(x))


def test_checkpoint_kwargs_kept(tmp_path: Path) -> None:
    net = build_backbone("espnetv2_s0.5", input_reinforcement=False)
    save_backbone(net, tmp_path / "a.pt")
    assert load_backbone("espnetv2_s0.5", tmp_path / "a.pt").build_kwargs == {
        "input_reinforcement": False
    }


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_backbone("resnet18", tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="could not read"):
        load_backbone("resnet18", corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a thorgym backbone checkpoint"):
        load_backbone("resnet18", foreign)
    path = save_backbone(build_backbone("espnetv2_s0.5"), tmp_path / "e.pt")
    with pytest.raises(ValueError, match="holds 'espnetv2_s0.5'"):
        load_backbone("espnetv2_s1.0", path)
    with pytest.raises(ValueError, match="unknown backbone"):
        load_backbone("nope", path)
    # Same name, different structure → key mismatch reported.
    other = build_backbone("espnetv2_s0.5", input_reinforcement=False)
    with pytest.raises(ValueError, match="does not match"):
        load_backbone_state(other, path)
    # Truncated file.
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not read"):
        load_backbone("espnetv2_s0.5", trunc)
    with pytest.raises(TypeError):
        save_backbone(torch.nn.Linear(2, 2), tmp_path / "x.pt")
