"""Episode sets on disk: gzipped (or plain) JSON ``{"episodes": [...]}``, written atomically.

One format for every task's fixed evaluation episodes (ObjectNav, FurnLift, FurnMove).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thorgym.atomic import atomic_writer

__all__ = ["DATA_DIR", "read_episodes", "save_episodes", "shipped_episodes"]

DATA_DIR = Path(__file__).parent / "data"  # the shipped sets (package data)


def save_episodes(episodes: list[dict[str, Any]], path: str | Path) -> Path:
    """Write episodes as gzipped JSON (atomically; byte-identical for identical episodes)."""
    path = Path(path)
    with atomic_writer(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps({"episodes": episodes}, indent=0).encode())
    return path


def read_episodes(
    path: str | Path, check: Callable[[dict[str, Any]], object] | None = None
) -> list[dict[str, Any]]:
    """The episodes of a .json or .json.gz file (a list, or a dict with ``episodes``).

    ``check`` (e.g. a task's ``Episode.from_dict``) is called on every episode, so that a file
    with a malformed episode fails here, naming the file and the episode, rather than with a
    ``KeyError`` deep inside an environment's reset. Every problem is a ``ValueError`` (a
    ``FileNotFoundError`` when the file is missing) that names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"episode file {p} does not exist (pass a .json or .json.gz episode file)")
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"episode file {p} is corrupt or truncated ({type(e).__name__}: {e}); regenerate it "
            "(`thorgym data ...`) or restore it"
        ) from None
    episodes = data.get("episodes") if isinstance(data, dict) else data
    if not isinstance(episodes, list):
        raise ValueError(
            f"episode file {p} holds no episode list: expected a JSON list or an object with an "
            f"'episodes' list, got {type(data).__name__}"
            + (f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else "")
        )
    for i, e in enumerate(episodes):
        if not isinstance(e, dict):
            raise ValueError(f"episode file {p}: episode {i} is a {type(e).__name__}, not an object")
        if check is not None:
            try:
                check(e)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                what = f"missing field {err}" if isinstance(err, KeyError) else str(err)
                raise ValueError(f"episode file {p}: episode {i} is malformed ({what})") from None
    return episodes


def shipped_episodes(name: str) -> list[dict[str, Any]]:
    """The episodes of the shipped set ``DATA_DIR/<name>.json.gz``, or of ``DATA_DIR/<name>.csv``
    (one dict per row, values as text: IQA's question sets) (a task names it with
    ``thorgym.tasks.base.EpisodeFile``)."""
    path = DATA_DIR / f"{name}.json.gz"
    if path.is_file():
        return read_episodes(path)
    csv_path = DATA_DIR / f"{name}.csv"
    if csv_path.is_file():
        import csv

        with open(csv_path, newline="") as f:
            return [dict(row) for row in csv.DictReader(f)]
    known = sorted(p.name.removesuffix(".json.gz").removesuffix(".csv") for p in DATA_DIR.glob("*.*")
                   if p.name.endswith((".json.gz", ".csv")))  # fmt: skip
    raise FileNotFoundError(f"no shipped episode set {name!r} ({path}); shipped: {', '.join(known)}")
