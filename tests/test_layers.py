"""The import direction of docs/architecture.md: a lower layer never imports a higher one.

Every import in the package counts, lazy ones inside functions included. Layers, lowest first
(modules of one layer may import each other only within their own package):

0 utilities (atomic writes, device/threads, the registration table) · 1 sim · 2 tasks ·
3 datasets, kqa, backbones (models that know only tensors), rundir (run directories) · 4 envs ·
5 agents · 6 train/eval entry points (eval, pretrain) · 7 benchmarks, KQA baselines · 8 cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

# module prefix -> (layer, group); the longest matching prefix wins
LAYERS: dict[str, tuple[int, str]] = {
    "thorgym": (0, "root"),
    "thorgym.atomic": (0, "atomic"),
    "thorgym.device": (0, "device"),
    "thorgym.cache": (0, "cache"),
    "thorgym.registration": (0, "registration"),
    "thorgym.sim": (1, "sim"),
    "thorgym.tasks": (2, "tasks"),
    "thorgym.datasets": (3, "datasets"),
    "thorgym.kqa": (3, "kqa"),
    "thorgym.kqa.baselines": (7, "kqa-baselines"),
    "thorgym.agents.backbones": (3, "backbones"),
    "thorgym.agents.metrics": (3, "backbones"),
    "thorgym.envs": (4, "envs"),
    "thorgym.agents": (5, "agents"),
    "thorgym.rundir": (3, "rundir"),
    "thorgym.train": (6, "train"),
    "thorgym.train_savn": (6, "train"),
    "thorgym.pretrain": (6, "pretrain"),
    "thorgym.eval": (6, "eval"),
    "thorgym.benchmarks": (7, "benchmarks"),
    "thorgym.cli": (8, "cli"),
    "thorgym.__main__": (8, "cli"),
}
# imports that cross the order on purpose: the package root registers the environments
ALLOWED: set[tuple[str, str]] = {("root", "registration")}
UTILITIES = {"atomic", "device", "cache"}  # layer-0 helpers every layer may use


def _layer(module: str) -> tuple[int, str] | None:
    best = None
    for prefix, v in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, v)
    return None if best is None else best[1]


def _modules() -> dict[str, Path]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for pkg, folder in cfg.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            name = pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"
            out[name] = f
    return out


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m == "thorgym" or m.startswith("thorgym.")}


def test_every_module_has_a_layer():
    missing = [m for m in _modules() if _layer(m) is None]
    assert not missing, f"add these modules to LAYERS (and docs/architecture.md): {missing}"


def test_no_module_imports_a_higher_layer():
    modules = _modules()
    bad = []
    for module, path in modules.items():
        lo, group = _layer(module)
        for imp in _imports(module, path):
            if imp not in modules and imp.rsplit(".", 1)[0] in modules:
                imp = imp.rsplit(".", 1)[0]  # `from pkg.module import name`
            if imp not in modules:
                continue
            li, igroup = _layer(imp)
            if (group, igroup) in ALLOWED or igroup in UTILITIES:
                continue
            if li > lo or (li == lo and igroup != group):
                bad.append(f"{module} (layer {lo}, {group}) imports {imp} (layer {li}, {igroup})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))
