"""Episode sets on disk: gzipped (or plain) JSON ``{"episodes": [...]}``, written atomically.

One format for every task's fixed evaluation episodes (ObjectNav, FurnLift, FurnMove).
"""

from __future__ import annotations

import gzip
import json
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


def read_episodes(path: str | Path) -> list[dict[str, Any]]:
    """The episodes of a .json or .json.gz file (a list, or a dict with ``episodes``)."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt") as f:
        data = json.load(f)
    return data["episodes"] if isinstance(data, dict) else data


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
