"""Episode sets on disk: gzipped (or plain) JSON ``{"episodes": [...]}``, written atomically.

One format for every task's fixed evaluation episodes (ObjectNav, FurnLift, FurnMove).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from thorgym.atomic import atomic_writer

__all__ = ["read_episodes", "save_episodes"]


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
