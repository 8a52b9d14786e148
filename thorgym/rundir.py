"""The run directory of `thorgym train`, and the device and thread choice of every trainer.

Layout (one agent writes one checkpoint format ``EXT``: ``zip`` for SB3, ``pt`` for torch)::

    OUT/checkpoints/ckpt_<steps>.<EXT>   atomic, every --checkpoint-every steps (+ .json meta for SB3)
    OUT/final.<EXT>                      the end of training
    OUT/args.json                        the run's arguments
    OUT/tb/                              TensorBoard logs
    OUT/learning_curve.png               success, SPL and episode reward against steps

``--checkpoint FILE|DIR`` accepts a checkpoint file or a run directory, which means its latest
checkpoint (``final.<EXT>`` when training finished, else the newest ``ckpt_*``).
Importing this module imports neither torch nor NumPy; the functions that need them import them.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from thorgym.atomic import atomic_writer, write_json_atomic
from thorgym.device import resolve_device, set_threads  # noqa: F401  (the run's device/threads)

if TYPE_CHECKING:
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "RunDir",
    "EXIT_TERMINATED",
    "checkpoint_contents",
    "exit_terminated",
    "stop_on_sigterm",
    "termination_requested",
    "checkpoint_steps",
    "load_torch_checkpoint",
    "read_json",
    "read_scalars",
    "resolve_checkpoint",
    "resolve_device",
    "set_threads",
    "write_learning_curve",
]

_CKPT = re.compile(r"^ckpt_(\d+)$")


def checkpoint_steps(path: Path) -> int:
    """The step count in a ``ckpt_<steps>.<ext>`` name (zero-padded or not)."""
    m = _CKPT.match(path.stem)
    if m is None:
        raise ValueError(f"{path.name} is not a checkpoint name: expected ckpt_<steps>.<ext>")
    return int(m.group(1))


def _newest(folder: Path, suffixes: Sequence[str]) -> Path | None:
    found = [
        p
        for s in suffixes
        for p in folder.glob(f"ckpt_*{s}")
        if p.is_file() and _CKPT.match(p.stem)
    ]
    return max(found, key=lambda p: (checkpoint_steps(p), p.name)) if found else None


@dataclass(frozen=True)
class RunDir:
    """The files of one training run under ``root`` for checkpoints with suffix ``ext`` (".zip")."""

    root: Path
    ext: str

    def __post_init__(self) -> None:
        if not self.ext.startswith("."):
            raise ValueError(f"checkpoint suffix {self.ext!r} must start with a dot, e.g. '.pt'")

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final(self) -> Path:
        return self.root / f"final{self.ext}"

    @property
    def args_file(self) -> Path:
        return self.root / "args.json"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def curve(self) -> Path:
        return self.root / "learning_curve.png"

    def checkpoint(self, steps: int) -> Path:
        return self.checkpoints / f"ckpt_{steps:010d}{self.ext}"

    def latest_checkpoint(self) -> Path | None:
        """The newest ``checkpoints/ckpt_*`` of this run (by step count), or None."""
        return _newest(self.checkpoints, (self.ext,))

    def resume_from(self, resume: bool) -> Path | None:
        """The checkpoint ``--resume`` continues from; None (with a note) when there is none."""
        if not resume:
            return None
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            print(f"--resume: no checkpoint in {self.checkpoints}; starting from scratch")
        return ckpt

    def write_args(self, args: Mapping[str, object]) -> Path:
        return write_json_atomic(self.args_file, dict(args), indent=1)

    def write_checkpoint(
        self, path: Path, write: Callable[[IO[bytes]], object], meta: Mapping[str, object] | None = None
    ) -> Path:
        """Write a checkpoint atomically with ``write(file)``; ``meta`` goes beside it as ``.json``.

        ``write`` fills a memory buffer first: torch's and SB3's zip writers, when the disk fills
        up under them, raise unrelated errors from their cleanup that hide the ``OSError``.
        """
        buf = io.BytesIO()
        write(buf)
        with atomic_writer(path) as f:
            f.write(buf.getbuffer())
        if meta is not None:
            write_json_atomic(path.with_suffix(".json"), dict(meta), indent=1)
        return path

    def next_checkpoint(self, steps: int, every: int) -> int:
        """The first multiple of ``every`` above ``steps``: when the next checkpoint is due."""
        if every < 1:
            raise ValueError(f"--checkpoint-every must be >= 1, got {every}")
        return (steps // every + 1) * every

    def tb_writer(self, name: str) -> SummaryWriter:
        """A TensorBoard writer into ``OUT/tb/<name>`` (one folder per start or resumption)."""
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.tb / name))


def resolve_checkpoint(path: str | os.PathLike, suffixes: Sequence[str] = (".zip", ".pt")) -> Path:
    """A checkpoint file as given, or for a run directory its latest checkpoint: ``final.<ext>``
    if training finished, else the newest ``checkpoints/ckpt_*`` (or ``ckpt_*`` in the folder)."""
    p = Path(path)
    names = "|".join(s.lstrip(".") for s in suffixes)
    if p.is_dir():
        for s in suffixes:
            if (p / f"final{s}").is_file():
                return p / f"final{s}"
        found = _newest(p / "checkpoints", suffixes) or _newest(p, suffixes)
        if found is None:
            raise FileNotFoundError(
                f"no checkpoint in run directory {p}: expected final.{names} or checkpoints/ckpt_*.{names} "
                "(train one with `thorgym train objectnav --out DIR`, or pass the --agent that wrote it)"
            )
        return found
    if not p.exists():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist: pass a .{names} file written by `thorgym train` "
            "or its run directory"
        )
    return p


def read_scalars(out: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a TensorBoard scalar over all event files of a run (resumes included)."""
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for d in sorted({p.parent for p in (Path(out) / "tb").rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(d), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            for e in acc.Scalars(tag):
                points[e.step] = e.value
    steps = np.array(sorted(points), dtype=np.int64)
    return steps, np.array([points[s] for s in steps], dtype=np.float64)


def write_learning_curve(out: Path) -> Path:
    """Plot success, SPL and episode reward against steps from the run's TensorBoard logs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, tag, label in zip(
        axes,
        ("objectnav/success", "objectnav/spl", "rollout/ep_rew_mean"),
        ("success (last 100 episodes)", "SPL (last 100 episodes)", "episode reward"),
        strict=True,
    ):
        s, v = read_scalars(out, tag)
        if not len(s) and tag == "rollout/ep_rew_mean":  # SB3's name; thorgym's PPO logs CleanRL's
            s, v = read_scalars(out, "charts/episode_return")
        ax.plot(s, v)
        ax.set_xlabel("environment steps")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"thorgym train: {out}")
    fig.tight_layout()
    path = Path(out) / "learning_curve.png"
    with atomic_writer(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def last_line(log: Path) -> str:
    """The last non-empty line of a text log (progress-bar carriage returns split lines too)."""
    if not log.is_file():
        return ""
    lines = [ln.strip() for ln in re.split(r"[\r\n]", log.read_text(errors="replace")) if ln.strip()]
    return lines[-1] if lines else ""


def read_json(path: Path) -> dict[str, object]:
    """A JSON object file (a checkpoint's meta, args.json); {} when absent.

    A file that is not a JSON object (truncated, hand-edited) is a ``ValueError`` naming it, not
    a ``JSONDecodeError`` from deep inside the caller.
    """
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is corrupt: not valid JSON ({e}); delete or restore it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is corrupt: expected a JSON object, found {type(data).__name__}")
    return data


#: Exit status of a training run that SIGTERM stopped after saving a checkpoint (128 + SIGTERM,
#: what a shell reports for a process ended by SIGTERM).
EXIT_TERMINATED = 128 + signal.SIGTERM
_terminate = threading.Event()


def termination_requested() -> bool:
    """True once SIGTERM arrived inside :func:`stop_on_sigterm`: save a checkpoint and stop."""
    return _terminate.is_set()


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within this block SIGTERM asks the trainer to stop at its next safe point (the end of the
    current update) instead of killing it mid-write, so that a cluster's preemption or a ``kill``
    costs no more than the iteration in progress: the trainer saves a checkpoint and calls
    :func:`exit_terminated`; ``--resume`` continues from it. A second SIGTERM ends the process at
    once. Only the main thread can take signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if _terminate.is_set():  # asked twice: stop now, as without this handler
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        _terminate.set()
        print("SIGTERM: saving a checkpoint after this update, then exiting", file=sys.stderr, flush=True)

    _terminate.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _terminate.clear()


def exit_terminated(checkpoint: Path) -> NoReturn:
    """Leave after a SIGTERM checkpoint: say how to continue, exit with :data:`EXIT_TERMINATED`."""
    print(f"stopped by SIGTERM; saved {checkpoint}; continue with the same command and --resume", flush=True)
    raise SystemExit(EXIT_TERMINATED)


def load_torch_checkpoint(
    path: str | os.PathLike, fmt: str, what: str, hint: str, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Read a ``torch.save``d checkpoint dict whose ``"format"`` entry is ``fmt``, safely.

    Loaded with ``weights_only=True``, so a file that would run code when unpickled is refused
    rather than executed. Every way the file can be wrong (missing, truncated, not a torch file,
    unsafe, not a dict, another agent's checkpoint, another format version) is a ``ValueError``
    (``FileNotFoundError`` when missing) naming the file, the problem and, via ``hint``, how to
    get a good one. ``what`` names the kind of checkpoint in messages ("PPO", "tbone", ...).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint {path} does not exist; {hint}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        # A GLOBAL the safe unpickler will not resolve is a callable or class: code that would run.
        # ("Unsupported operand" and the like are bytes that are no pickle at all: corrupt.)
        if "Weights only load failed" in text and "GLOBAL" in text:
            bad = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            raise ValueError(
                f"refused to load {what} checkpoint {path}: it holds objects other than tensors and plain "
                f"data ({bad}), which could run code when loaded; only load checkpoints you trust, {hint}"
            ) from None
        first = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), text.splitlines()[0])
        problem = f"corrupt, truncated or not a torch file ({first})"
        raise ValueError(f"{path} is not a readable {what} checkpoint: {problem}; {hint}") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, bad magic, EOF, ...: one user error
        first = str(e).splitlines()[0] if str(e) else ""
        problem = f"corrupt, truncated or not a torch file ({type(e).__name__}: {first})"
        raise ValueError(f"{path} is not a readable {what} checkpoint: {problem}; {hint}") from None
    if not isinstance(ckpt, dict):
        raise ValueError(
            f"{path} is not a {what} checkpoint: it holds a {type(ckpt).__name__}, not a checkpoint "
            f"dict; {hint}"
        )
    tag = ckpt.get("format")
    if tag != fmt:
        family = re.split(r"[-/.]v?\d+$", fmt)[0]
        if isinstance(tag, str) and tag != fmt and re.split(r"[-/.]v?\d+$", tag)[0] == family:
            raise ValueError(
                f"{what} checkpoint {path} has format {tag!r}, written by another thorgym version; this "
                f"version reads {fmt!r}: retrain, or evaluate it with the thorgym version that wrote it"
            )
        raise ValueError(f"{path} is not a {what} checkpoint (format {tag!r}, expected {fmt!r}); {hint}")
    return ckpt


@contextmanager
def checkpoint_contents(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn errors raised while building a model from a checkpoint's contents (a missing entry,
    a tensor of the wrong shape, a config key this version does not know) into one
    ``ValueError`` naming the file, instead of a ``KeyError`` or a state-dict dump."""
    try:
        yield
    except (KeyError, TypeError, RuntimeError, AttributeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"{what} checkpoint {path} is incomplete or from an incompatible version "
            f"({type(e).__name__}: {first[:300]}); retrain, or use the thorgym version that wrote it"
        ) from None
