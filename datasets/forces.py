"""The forces dataset: pushes on visible objects of the built-in scenes, simulated with MuJoCo.

``thorgym data forces --out DIR [--scenes …] [--n N] [--seed S]`` writes, per split (train / val /
test by scene, AI2-THOR's usual split: FloorPlan 1–20 / 21–25 / 26–30 of each room type), one
shard per scene, ``DIR/<split>/<scene>.npz``, and ``DIR/manifest.json``. Each shard holds the
scene's samples as stacked arrays (:data:`ARRAY_KEYS`). A shard is written atomically and only
when complete, so a killed run is resumed by running the same command again: finished shards
are kept (when their recorded settings match), the others made again. A shard's samples depend
only on (seed, scene, N, size), so the same command gives the same bytes.

How one scene's samples are made (:func:`scene_samples`): the agent stands at random reachable
positions, turned to a random multiple of 90° and looking down 30°; in each view, pushable
objects (AI2-THOR's rule: pickupable or moveable, visible, not shut in or held) with at least
:data:`MIN_MASK_PIXELS` pixels are candidates. A sample picks one, a pixel of its mask (the force
acts where that pixel's ray hits the object), a horizontal direction (:data:`PUSH_ANGLES` from
the camera's forward) and a magnitude (one of :data:`MAGNITUDES` newtons that does not throw
the object faster than ``thorgym.sim.physics.MAX_PUSH_SPEED``); MuJoCo simulates until
everything is at rest, the object is too fast (the sample is dropped and counted) or a time cap;
the world is then put back, so every push starts from the scene as the image shows it.
A small test split ships with the package (``datasets/data/forces_test.npz``, 64×64).
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thorgym.atomic import write_bytes_atomic, write_json_atomic
from thorgym.tasks.forces import (
    MAGNITUDES,
    NUM_CLASSES,
    PUSH_ANGLES,
    SPLITS,
    STEPS,
    summarize_counts,
    trajectory_labels,
)

if TYPE_CHECKING:
    from thorgym.sim.batch import BatchedSimulator

FORMAT_VERSION = 1
TRAJ_LEN = 151  # 3 s of trajectory at 0.02 s (pushes that run longer are cut for storage)
MIN_MASK_PIXELS = 6
HORIZON = 30.0  # degrees down: tables and counters in view
SHIPPED_TEST = Path(__file__).parent / "data" / "forces_test.npz"
ARRAY_KEYS = (
    "image", "mask", "point", "angle", "magnitude", "point3d", "trajectory", "traj_len", "labels",
    "scene", "object_id", "object_type", "camera", "outcome",
)  # fmt: skip


@dataclass
class ForceArrays:
    """K samples as stacked arrays (the shard format; see :class:`thorgym.tasks.forces.ForceSample`)."""

    image: np.ndarray  # (K, H, W, 3) uint8
    mask: np.ndarray  # (K, H, W) bool
    point: np.ndarray  # (K, 2) float32 image x, y in [0, 1]
    angle: np.ndarray  # (K,) float32 degrees clockwise from the camera's forward
    magnitude: np.ndarray  # (K,) float32 newtons
    point3d: np.ndarray  # (K, 3) float32
    trajectory: np.ndarray  # (K, TRAJ_LEN, 3) float32, padded with the last position
    traj_len: np.ndarray  # (K,) int32 valid trajectory points
    labels: np.ndarray  # (K, STEPS) int64 in [0, NUM_CLASSES)
    scene: np.ndarray  # (K,) str
    object_id: np.ndarray  # (K,) str
    object_type: np.ndarray  # (K,) str
    camera: np.ndarray  # (K, 5) float32 agent x, y, z, yaw, horizon
    outcome: np.ndarray  # (K,) str: "rest" or "timeout"

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray | Sequence[int]) -> ForceArrays:
        idx = np.asarray(idx)
        return ForceArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: Sequence[ForceArrays]) -> ForceArrays:
        if not parts:
            raise ValueError("no samples to concatenate")
        return ForceArrays(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ForceArrays)}
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, format_version=np.int64(FORMAT_VERSION), **{k: getattr(self, k) for k in ARRAY_KEYS}
        )
        return buf.getvalue()


def read_shard(path: str | Path) -> ForceArrays:
    """Read one shard (or the shipped split), checking its format; ValueError names the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"]) if "format_version" in z.files else None
            if version != FORMAT_VERSION:
                raise ValueError(f"format version {version}, expected {FORMAT_VERSION}")
            missing = [k for k in ARRAY_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            arrays = ForceArrays(**{k: z[k] for k in ARRAY_KEYS})
    except FileNotFoundError:
        raise
    except Exception as e:  # zip, pickle or shape errors: one clear message
        raise ValueError(
            f"{path}: not a thorgym forces shard ({e}); regenerate it with `thorgym data forces`"
        ) from e
    k = len(arrays.labels)
    if (
        arrays.labels.shape != (k, STEPS)
        or arrays.labels.min(initial=0) < 0
        or arrays.labels.max(initial=0) >= NUM_CLASSES
    ):
        raise ValueError(f"{path}: labels must be (K, {STEPS}) integers in [0, {NUM_CLASSES})")
    for f in fields(ForceArrays):
        if len(getattr(arrays, f.name)) != k:
            raise ValueError(f"{path}: array {f.name!r} has {len(getattr(arrays, f.name))} rows, labels {k}")
    return arrays


def load_split(root: str | Path | None, split: str) -> ForceArrays:
    """All samples of a split under `root` (a `thorgym data forces --out` folder), in scene order.
    ``root=None`` with split "test" is the shipped test split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
    if root is None:
        if split != "test":
            raise ValueError(
                f"only the test split ships; generate {split!r} with `thorgym data forces --out DIR`"
            )
        return read_shard(SHIPPED_TEST)
    folder = Path(root) / split
    shards = sorted(folder.glob("*.npz"))
    if not shards:
        raise FileNotFoundError(f"no shards in {folder}: run `thorgym data forces --out {root}` first")
    return ForceArrays.concat([read_shard(p) for p in shards])


# -- generation --------------------------------------------------------------------------------
SAMPLES_PER_VIEW = 3  # pushes recorded from one rendered view (different objects, points, forces)
PICKUPABLE_WEIGHT = 4.0  # how much likelier a pickupable candidate is pushed than a moveable one


def scene_samples(
    scene: str, n: int, seed: int, size: int = 64, sim: BatchedSimulator | None = None
) -> tuple[ForceArrays | None, dict]:
    """`n` samples of one scene (see the module docstring) and counts of what was tried.

    Deterministic in (scene, n, seed, size). Returns (None, counts) when the scene offers no
    pushable object in view after many tries. `sim` (a one-world simulator of `scene` at `size`
    from :func:`scene_simulator`) saves building one: pushes do not change its world, only the
    agent's pose, so it can be reused.
    """
    from thorgym.sim.objects import OBJECT_TYPES
    from thorgym.sim.physics import MAX_PUSH_SPEED, push_direction, push_speed
    from thorgym.sim.scenes import parse_scene

    if n < 1:
        raise ValueError(f"n must be at least 1 sample per scene, got {n}")
    rng = np.random.default_rng([seed, zlib.crc32(scene.encode())])
    if sim is None:
        sim = scene_simulator(scene, size)
    elif sim.worlds[0].spec.name != parse_scene(scene)[0] or (sim.width, sim.height) != (size, size):
        raise ValueError(f"scene_samples: the simulator given is not {scene} at {size}x{size}")
    world = sim.worlds[0]
    reachable = sim.reachable_positions(0)
    # Objects the physics moves (pushable, not shut in, not stuck as generated), light enough
    # for the smallest magnitude.
    moves = set(sim.physics(0).dynamic)
    pushable = np.array(
        [
            j in moves and push_speed(world, j, MAGNITUDES[0]) <= MAX_PUSH_SPEED
            for j in range(len(world.objects))
        ]
    )
    small = np.array([OBJECT_TYPES[o.object_type].pickupable for o in world.objects])
    rows: list[dict] = []
    counts = {"views": 0, "too_fast": 0, "timeout": 0}
    while len(rows) < n and counts["views"] < 40 * n:
        counts["views"] += 1
        x, z = reachable[int(rng.integers(len(reachable)))]
        yaw = 90.0 * int(rng.integers(4))
        if not bool(sim.teleport([0], [x], [z], [yaw], [HORIZON])[0]):
            continue
        out, visible = sim.render()
        inst = out.inst[0].cpu().numpy()
        vis = visible[0, 0].cpu().numpy()
        pix = np.bincount(inst[inst >= 0].ravel(), minlength=len(world.objects))
        cands = np.flatnonzero(vis & pushable & (pix >= MIN_MASK_PIXELS))
        if len(cands) == 0:
            continue
        image = out.rgb[0].cpu().numpy()
        # Small objects are what the paper pushes; furniture that can be shoved stays in, rarer.
        weight = np.where(small[cands], PICKUPABLE_WEIGHT, 1.0)
        take = min(SAMPLES_PER_VIEW, len(cands))
        for j in rng.choice(cands, size=take, replace=False, p=weight / weight.sum()):
            if len(rows) >= n:
                break
            mask = inst == j
            r_, c_ = np.nonzero(mask)
            k = int(rng.integers(len(r_)))
            px, py = (c_[k] + 0.5) / size, (r_[k] + 0.5) / size
            hit = sim.object_at(px, py, worlds=[0])
            if int(hit.code[0]) != j:  # cannot happen with the renderer's arithmetic; be safe
                continue
            point3d = hit.point[0].cpu().numpy().astype(np.float64)
            angle = float(PUSH_ANGLES[int(rng.integers(len(PUSH_ANGLES)))])
            allowed = [m for m in MAGNITUDES if push_speed(world, int(j), m) <= MAX_PUSH_SPEED]
            magnitude = float(allowed[int(rng.integers(len(allowed)))])
            res = sim.push_objects(
                [0],
                [int(j)],
                push_direction(yaw, angle),
                magnitude,
                point=point3d,
                apply=False,
                stop_too_fast=True,
            )[0]
            if res.outcome == "too_fast":
                counts["too_fast"] += 1
                continue
            counts["timeout"] += res.outcome == "timeout"
            traj = np.repeat(res.positions[-1:], TRAJ_LEN, axis=0)
            t = min(len(res.positions), TRAJ_LEN)
            traj[:t] = res.positions[:t]
            o = world.objects[int(j)]
            rows.append(
                {
                    "image": image,
                    "mask": mask,
                    "point": np.array([px, py], dtype=np.float32),
                    "angle": np.float32(angle),
                    "magnitude": np.float32(magnitude),
                    "point3d": point3d.astype(np.float32),
                    "trajectory": traj.astype(np.float32),
                    "traj_len": np.int32(t),
                    "labels": trajectory_labels(res.times, res.positions, yaw),
                    "scene": scene,
                    "object_id": o.object_id,
                    "object_type": o.object_type,
                    "camera": np.array([x, float(sim.pos[0, 0, 1]), z, yaw, HORIZON], dtype=np.float32),
                    "outcome": res.outcome,
                }
            )
    if not rows:
        return None, counts
    arrays = ForceArrays(**{k: np.stack([r[k] for r in rows]) for k in ARRAY_KEYS})
    arrays.scene = arrays.scene.astype(str)
    return arrays, counts


def scene_simulator(scene: str, size: int = 64) -> BatchedSimulator:
    """The one-world simulator the samples of a scene are drawn with."""
    from thorgym.sim.batch import BatchedSimulator

    return BatchedSimulator(
        [scene], width=size, height=size, render_depth=False, render_instance_segmentation=True
    )


def _shard_settings(n: int, seed: int, size: int) -> dict:
    return {"format_version": FORMAT_VERSION, "n": n, "seed": seed, "size": size}


def generate_forces(
    out: str | Path,
    scenes: Sequence[str] | None = None,
    n: int = 40,
    seed: int = 0,
    size: int = 64,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Write the dataset under `out` (see the module docstring) and return the manifest.

    `scenes` (default: all 120) are sorted into train / val / test by AI2-THOR's split. Shards
    already there with the same settings are kept (resume); the manifest is rewritten at the end.
    """
    from tqdm import tqdm

    from thorgym.sim.scenes import all_scenes, parse_scene, split_of

    if not isinstance(size, int) or not 32 <= size <= 300:
        raise ValueError(f"size must be an integer in [32, 300] pixels, got {size!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of samples per scene, got {n!r}")
    chosen = list(scenes) if scenes else all_scenes()
    for s in chosen:
        parse_scene(s)  # ValueError naming a bad scene
    out = Path(out)
    settings = _shard_settings(n, seed, size)
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    old_shards = old.get("shards", {}) if old.get("settings") == settings else {}
    shards: dict[str, dict] = {}
    todo = []
    for scene in chosen:
        prev = old_shards.get(scene)
        path = out / split_of(scene) / f"{scene}.npz"
        if prev is not None and (path.exists() or prev["samples"] == 0):
            try:
                if prev["samples"]:
                    read_shard(path)
                shards[scene] = prev
                continue
            except ValueError:
                pass  # a damaged shard is made again
        todo.append(scene)
    bar = tqdm(total=len(chosen), initial=len(shards), desc="forces", unit="scene", disable=not progress)
    jobs = [(scene, n, seed, size, str(out)) for scene in todo]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            done = pool.imap(_make_shard, jobs)
            for scene, info in zip(todo, done, strict=True):
                shards[scene] = info
                write_json_atomic(manifest_path, {"settings": settings, "shards": shards}, indent=1)
                bar.update()
    else:
        for job in jobs:
            shards[job[0]] = _make_shard(job)
            # The manifest follows every shard, so a killed run knows what is finished.
            write_json_atomic(manifest_path, {"settings": settings, "shards": shards}, indent=1)
            bar.update()
    bar.close()
    shards = {s: shards[s] for s in chosen}
    manifest = {"settings": settings, "shards": shards, "splits": _split_summary(out, shards)}
    write_json_atomic(manifest_path, manifest, indent=1)
    return manifest


def _make_shard(job: tuple[str, int, int, int, str]) -> dict:
    """Make and write one scene's shard (a worker process's unit of work); its manifest entry."""
    from thorgym.device import set_threads
    from thorgym.sim.scenes import split_of

    set_threads(1)
    scene, n, seed, size, out = job
    split = split_of(scene)
    arrays, counts = scene_samples(scene, n, seed, size)
    if arrays is None:
        return {"split": split, "samples": 0, **counts}
    write_bytes_atomic(Path(out) / split / f"{scene}.npz", arrays.to_bytes())
    return {"split": split, "samples": len(arrays), **counts}


def _split_summary(out: Path, shards: dict[str, dict]) -> dict:
    summary = {}
    for split in SPLITS:
        names = sorted(s for s, v in shards.items() if v["split"] == split and v["samples"])
        if not names:
            continue
        labels = np.concatenate([read_shard(out / split / f"{s}.npz").labels for s in names])
        summary[split] = {
            "scenes": len(names),
            "samples": int(len(labels)),
            "all_stop": int((labels == 0).all(axis=1).sum()),
            "class_counts": summarize_counts(labels),
        }
    return summary


def build_shipped_test(path: str | Path = SHIPPED_TEST, n: int = 10, seed: int = 0, size: int = 64) -> Path:
    """Make the small test split that ships with the package: `n` samples of each test scene,
    one file (the first `n` of what ``thorgym data forces --n N`` makes for a larger N)."""
    from thorgym.sim.scenes import scenes_for

    parts = [a for a, _ in (scene_samples(s, n, seed, size) for s in scenes_for("test")) if a is not None]
    return write_bytes_atomic(path, ForceArrays.concat(parts).to_bytes())


if __name__ == "__main__":
    print(f"wrote {build_shipped_test()}")
