"""Per-pose frozen-backbone features of static scenes (the cached ObjectNav observation).

An ObjectNav scene does not change while the agent moves, so the frame at a pose (position,
heading, horizon) is the same on every visit: a frozen backbone's features can be computed once
per pose and looked up during training. :func:`build_pose_features` renders every pose of
``build_pose_graph(scene)`` (pose index = position·16 + heading·2 + horizon) with a
:class:`thorgym.sim.BatchedSimulator` placed by ``teleport``, runs the backbone's convolutional
trunk, average-pools it to ``grid × grid`` and flattens it channel-major: a ``C·G·G`` vector,
the layout of SAVN's ``C × G × G`` input (64·3·3 = 576 for ``cnn_small``). :class:`FeatureCache`
keeps one ``.npy`` per scene on disk under a key naming everything that decides the values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from thorgym.atomic import atomic_writer
from thorgym.cache import cache_root

__all__ = ["FeatureCache", "build_pose_features", "default_root"]

FORMAT_VERSION = "pose-features-v1"


def default_root() -> Path:
    """The ``features`` folder of :func:`thorgym.cache.cache_root`. Features are not optional
    (the cached env reads them from disk), so with caching turned off they go to a temporary
    folder of this process."""
    root = cache_root()
    if root is None:
        import tempfile

        root = Path(tempfile.gettempdir()) / f"thorgym-{os.getpid()}"
    return root / "features"


def _spatial(backbone: nn.Module | str, grid: int, device: torch.device, ckpt: Path | None = None):
    from thorgym.agents.backbones import build_backbone, load_backbone_state
    from thorgym.agents.backbones.spatial import SpatialBackbone

    if isinstance(backbone, str):
        net = build_backbone(backbone)
        if ckpt is not None:
            load_backbone_state(net, ckpt)
    else:
        net = backbone
    return SpatialBackbone(net.to(device), grid)


def build_pose_features(
    scene: str,
    backbone: nn.Module | str,
    *,
    size: int = 64,
    grid: int = 3,
    batch: int = 256,
    device: str = "cpu",
    poses: Sequence[int] | None = None,
    backbone_ckpt: Path | None = None,
) -> np.ndarray:
    """(P·16, C·grid·grid) float16 features of every pose of ``scene`` (or of ``poses`` only,
    in that order).

    Args:
        backbone: a registry backbone module (used frozen, in eval mode) or its name (random
            weights unless ``backbone_ckpt`` names a ``thorgym pretrain`` checkpoint).
        size: frames are size×size RGB, field of view 90°, 45° turns (ObjectNav's camera).
        batch: worlds rendered per call (memory ~ batch·size² pixels).
    """
    from thorgym.sim import BatchedSimulator
    from thorgym.tasks.objectnav import FIELD_OF_VIEW, ROTATE_DEGREES, build_pose_graph

    if not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    dev = torch.device(device)
    graph = build_pose_graph(scene)
    ids = np.arange(graph.num_poses) if poses is None else np.asarray(poses, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= graph.num_poses):
        raise ValueError(f"poses must be in [0, {graph.num_poses}) for {scene}")
    net = _spatial(backbone, grid, dev, backbone_ckpt)
    k = min(batch, max(len(ids), 1))
    sim = BatchedSimulator(
        [graph.scene] * k, width=size, height=size, rotate_step_degrees=ROTATE_DEGREES,
        field_of_view=FIELD_OF_VIEW, render_depth=False, render_instance_segmentation=False, device=dev,
    )  # fmt: skip
    values = np.array([graph.pose_values(p) for p in ids], dtype=np.float32).reshape(-1, 4)
    out = np.empty((len(ids), net.channels * grid * grid), dtype=np.float16)
    for start in range(0, len(ids), k):
        v = values[start : start + k]
        m = len(v)
        worlds = torch.arange(m)
        ok = sim.teleport(worlds, v[:, 0], v[:, 1], yaw=v[:, 2], horizon=v[:, 3])
        if not bool(ok.all()):
            bad = ids[start : start + m][~ok.cpu().numpy()]
            raise RuntimeError(f"{scene}: the simulator refused pose(s) {bad[:5].tolist()} of the pose graph")
        rgb, _ = sim.render(rgb=True)
        frames = rgb.rgb.reshape(k, size, size, 3)[:m]
        with torch.no_grad():
            out[start : start + m] = net(frames).flatten(1).cpu().numpy().astype(np.float16)
    return out


def _file_hash(path: Path | None) -> str:
    if path is None:
        return "random-init"
    path = Path(path)
    if path.is_dir():
        path = path / "backbone.pt"
    if not path.is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {path}")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """Per-scene pose features on disk: ``root/<key>/<scene>.npy``, built on first use.

    ``key`` hashes the simulator fingerprint (``tasks.objectnav.sim_fingerprint()``,
    the one the pose-graph cache uses), the backbone name, the checkpoint file's bytes (random
    init when None), ``size`` and ``grid``: change any and a new folder is used. A random-init
    backbone is seeded (``torch.manual_seed(0)``) before it is built, so its cache is
    reproducible too.
    """

    def __init__(
        self,
        root: Path | None = None,
        backbone: str = "cnn_small",
        backbone_ckpt: Path | None = None,
        size: int = 64,
        grid: int = 3,
        *,
        device: str = "cpu",
        batch: int = 256,
    ) -> None:
        from thorgym.agents.backbones import get_spec
        from thorgym.tasks.objectnav import sim_fingerprint

        get_spec(backbone)  # unknown name → ValueError listing the valid ones
        self.root = Path(root) if root is not None else default_root()
        self.backbone, self.size, self.grid = backbone, int(size), int(grid)
        self.backbone_ckpt = None if backbone_ckpt is None else Path(backbone_ckpt)
        self.device, self.batch = device, batch
        parts = [
            FORMAT_VERSION,
            sim_fingerprint(),
            backbone,
            _file_hash(self.backbone_ckpt),
            str(size),
            str(grid),
        ]
        self.key = hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]
        self._loaded: dict[str, np.ndarray] = {}
        self._net: nn.Module | None = None

    @property
    def folder(self) -> Path:
        return self.root / self.key

    def path(self, scene: str) -> Path:
        from thorgym.sim.scenes import parse_scene

        return self.folder / f"{parse_scene(scene)[0]}.npy"

    def _backbone(self) -> nn.Module:
        if self._net is None:
            from thorgym.agents.backbones import build_backbone, load_backbone_state

            torch.manual_seed(0)
            net = build_backbone(self.backbone)
            if self.backbone_ckpt is not None:
                load_backbone_state(net, self.backbone_ckpt)
            self._net = net.eval()
        return self._net

    def get(self, scene: str) -> np.ndarray:
        """(P·16, C·grid·grid) float16 features of ``scene`` (memory, then disk, then built)."""
        path = self.path(scene)
        if path.name not in self._loaded:
            if path.is_file():
                arr = np.load(path, mmap_mode="r")
            else:
                arr = build_pose_features(
                    scene,
                    self._backbone(),
                    size=self.size,
                    grid=self.grid,
                    batch=self.batch,
                    device=self.device,
                )
                with atomic_writer(path) as f:
                    np.save(f, arr)
            self._loaded[path.name] = arr
        return self._loaded[path.name]

    def build(self, scenes: Iterable[str], progress: bool = True, workers: int | None = None) -> list[Path]:
        """Build (or find) the features of ``scenes``; returns their ``.npy`` paths.

        Missing scenes are built by ``workers`` processes of one torch thread each (default: one
        per CPU core, at most 4): rendering and the backbone are single-threaded work per pose.
        """
        from tqdm.auto import tqdm

        scenes = list(scenes)
        missing = [s for s in dict.fromkeys(scenes) if not self.path(s).is_file()]
        workers = min(len(missing), workers or min(4, os.cpu_count() or 1))
        desc = f"pose features {self.backbone}"
        bar = tqdm(total=len(scenes), desc=desc, unit="scene", disable=not progress)
        bar.update(len(scenes) - len(missing))
        if workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            spec = (str(self.root), self.backbone, self.backbone_ckpt, self.size, self.grid, self.batch)
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                for _ in pool.map(_build_one, [(spec, s) for s in missing]):
                    bar.update(1)
        else:
            for scene in missing:
                self.get(scene)
                bar.update(1)
        bar.close()
        return [self.path(s) for s in scenes]


def _build_one(job: tuple[tuple, str]) -> str:
    """Worker of :meth:`FeatureCache.build`: one scene's features, one torch thread."""
    (root, backbone, ckpt, size, grid, batch), scene = job
    torch.set_num_threads(1)
    cache = FeatureCache(Path(root), backbone, ckpt, size, grid, batch=batch)
    cache.get(scene)
    return scene
