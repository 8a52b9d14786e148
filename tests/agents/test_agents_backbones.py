"""Backbone registry, ESPNetv2 sizes, and the input/output contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from thorgym.agents.backbones import (
    ImageBackbone,
    build_backbone,
    count_macs,
    count_params,
    get_spec,
    list_backbones,
)
from thorgym.agents.backbones.espnetv2 import branch_dilations

# Paper: params with a 1000-class head, multiply-adds at 224x224 (REFERENCES.md, Backbones).
ESPNETV2_PAPER = {
    "espnetv2_s0.5": (1.24e6, 28.37e6),
    "espnetv2_s1.0": (1.67e6, 85.72e6),
    "espnetv2_s1.25": (1.96e6, 123.39e6),
    "espnetv2_s1.5": (2.31e6, 168.6e6),
    "espnetv2_s2.0": (3.49e6, 284.8e6),
}

EXPECTED_NAMES = [
    *ESPNETV2_PAPER,
    "mobilevit_xxs",
    "mobilevit_xs",
    "mobilevit_s",
    "mobilevitv2_050",
    "mobilevitv2_075",
    "mobilevitv2_100",
    "mobilevitv2_125",
    "mobilevitv2_150",
    "mobilevitv2_175",
    "mobilevitv2_200",
    "resnet18",
]


# Forward/backward of the big ones takes seconds each on 2 cores: `slow`.
SLOW_NAMES = {
    "mobilevit_s",
    "mobilevitv2_100",
    "mobilevitv2_125",
    "mobilevitv2_150",
    "mobilevitv2_175",
    "mobilevitv2_200",
}


def test_registered_names() -> None:
    names = list_backbones()
    assert [n for n in names if n in EXPECTED_NAMES] == EXPECTED_NAMES  # others may be added
    assert list_backbones("espnetv2") == list(ESPNETV2_PAPER)
    assert get_spec("resnet18").family == "resnet"


@pytest.mark.parametrize("name", list(ESPNETV2_PAPER))
def test_espnetv2_params_and_macs_match_paper(name: str) -> None:
    params, macs = ESPNETV2_PAPER[name]
    net = build_backbone(name, num_classes=1000)
    assert abs(count_params(net) / params - 1) < 0.01
    assert abs(count_macs(net, 224, 224) / macs - 1) < 0.05
    # The paper counts convolutions only: that reproduces its figures almost exactly.
    assert abs(count_macs(net, 224, 224, include_linear=False) / macs - 1) < 0.01


def test_branch_dilations_from_r_lim() -> None:
    assert branch_dilations(4, 13) == [1, 2, 3, 4]
    assert branch_dilations(4, 11) == [1, 2, 3, 4]
    assert branch_dilations(4, 9) == [1, 2, 3, 4]
    assert branch_dilations(4, 7) == [1, 1, 2, 3]
    assert branch_dilations(4, 5) == [1, 1, 1, 2]


def test_count_macs_simple_layers() -> None:
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, groups=1),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    )
    expected = 8 * 16 * 16 * 3 * 9 + 8 * 16 * 16 * 1 * 9 + 8 * 10
    assert count_macs(conv, 16, 16) == expected
    assert count_params(conv) == sum(p.numel() for p in conv.parameters())


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_NAMES else n for n in list_backbones()],
)
def test_forward_backward_every_backbone(name: str) -> None:
    torch.manual_seed(0)
    net = build_backbone(name)
    assert isinstance(net, ImageBackbone)
    net.train()
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    y = net(x)
    assert y.shape == (2, net.out_dim) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["espnetv2_s0.5", "mobilevit_xxs", "mobilevitv2_050", "resnet18"])
def test_input_contract(name: str) -> None:
    torch.manual_seed(0)
    net = build_backbone(name).eval()
    x8 = torch.randint(0, 256, (2, 3, 64, 96), dtype=torch.uint8)  # rectangular
    with torch.no_grad():
        y8 = net(x8)
        yf = net(x8.float() / 255.0)  # documented float convention: [0, 1]
        ycl = net(x8.contiguous(memory_format=torch.channels_last))
        yodd = net(torch.rand(1, 3, 65, 97))
    assert y8.shape == (2, net.out_dim) and yodd.shape == (1, net.out_dim)
    scale = y8.abs().max()
    assert (yf - y8).abs().max() <= 1e-4 * scale
    assert (ycl - y8).abs().max() <= 1e-4 * scale


def test_input_errors() -> None:
    net = build_backbone("espnetv2_s0.5")
    with pytest.raises(ValueError, match="NHWC"):
        net(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        net(torch.zeros(1, 3, 64, 64, dtype=torch.int32))


def test_num_classes_head() -> None:
    net = build_backbone("espnetv2_s0.5", num_classes=7)
    assert net.out_dim == 7 and net.num_features == 1024
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 7)
    assert build_backbone("resnet18").out_dim == 512
    assert build_backbone("mobilevit_xxs").out_dim == 320


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'espnetv3'") as e:
        build_backbone("espnetv3")
    for name in list_backbones():
        assert name in str(e.value)


def test_unknown_kwarg_rejected() -> None:
    with pytest.raises(TypeError, match="drop_path_rte") as e:
        build_backbone("mobilevit_xxs", drop_path_rte=0.1)
    assert "drop_path_rate" in str(e.value)
    with pytest.raises(ValueError):
        build_backbone("resnet18", num_classes=-1)
    net = build_backbone("espnetv2_s0.5", input_reinforcement=False)
    assert not any("reinforce" in k for k in net.state_dict())


def test_import_is_light() -> None:
    # Only what `import thorgym` itself brings (it registers the Gymnasium ids) may come with
    # the backbones; no env/sim/task module, no ai2thor, and timm only when a MobileViT is built.
    code = (
        "import sys, thorgym; before = set(sys.modules);"
        "import thorgym.agents.backbones as b; b.build_backbone('espnetv2_s0.5');"
        "new = set(sys.modules) - before;"
        "bad = sorted(m for m in new if m.startswith(('gymnasium', 'thorgym.sim', "
        "'thorgym.envs', 'thorgym.tasks', 'ai2thor', 'timm')));"
        "assert not bad, bad;"
        "assert not [m for m in sys.modules if m.startswith(('thorgym.sim', 'thorgym.envs'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
