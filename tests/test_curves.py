"""Learning curves over seeds from TensorBoard logs (thorgym plot curves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from thorgym.cli import app
from thorgym.eval.curves import expand_runs, group_curve, plot_curves, read_scalars, smooth


def _fake_run(path: Path, slope: float) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(path / "tb" / "run_1"))
    for step in range(0, 1001, 100):
        w.add_scalar("objectnav/success", slope * step, step)
        w.add_scalar("objectnav/spl", 0.5 * slope * step, step)
    w.close()
    return path


def test_group_curve_mean_min_max(tmp_path: Path) -> None:
    a = _fake_run(tmp_path / "a", 1e-4)
    b = _fake_run(tmp_path / "b", 3e-4)
    s, v = read_scalars(a, "objectnav/success")
    assert list(s) == list(range(0, 1001, 100)) and v[-1] == pytest.approx(0.1)
    c = group_curve([a, b], "objectnav/success", points=11, window=1)
    assert c["steps"][0] == 0 and c["steps"][-1] == 1000
    np.testing.assert_allclose(c["mean"], 2e-4 * c["steps"], atol=1e-6)
    np.testing.assert_allclose(c["min"], 1e-4 * c["steps"], atol=1e-6)
    np.testing.assert_allclose(c["max"], 3e-4 * c["steps"], atol=1e-6)


def test_smooth_is_trailing_mean() -> None:
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])


def test_plot_and_cli(tmp_path: Path) -> None:
    for i, slope in enumerate((1e-4, 2e-4)):
        _fake_run(tmp_path / f"pre_seed{i}", slope)
        _fake_run(tmp_path / f"rnd_seed{i}", slope / 2)
    curves = plot_curves(
        {"pre": expand_runs([str(tmp_path / "pre_seed*")])}, tmp_path / "c.png", window=1
    )
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert curves["objectnav/success"]["pre"]["runs"].shape[0] == 2
    out = tmp_path / "cli.png"
    res = CliRunner().invoke(
        app,
        ["plot", "curves", str(out), "--group", f"pre={tmp_path}/pre_seed*",
         "--group", f"rnd={tmp_path}/rnd_seed0,{tmp_path}/rnd_seed1"],
    )
    assert res.exit_code == 0, res.output
    assert out.exists() and "objectnav/success pre mean" in res.output


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run directory"):
        expand_runs([str(tmp_path / "nothing*")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no TensorBoard scalar"):
        group_curve([tmp_path / "empty"], "objectnav/success")
    res = CliRunner().invoke(app, ["plot", "curves", str(tmp_path / "x.png"), "--group", "oops"])
    assert res.exit_code != 0 and "LABEL=RUN" in res.output
