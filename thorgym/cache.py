"""The one place on disk for thorgym's caches (pose graphs, per-pose features, embeddings).

``$THORGYM_CACHE`` (empty, "0", "off" or "none": caching off), else ``$XDG_CACHE_HOME/thorgym``
or ``~/.cache/thorgym``; each cache is a subfolder. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path | None:
    """The folder holding thorgym's caches, or None when caching is turned off."""
    env = os.environ.get("THORGYM_CACHE")
    if env is not None:
        if env.strip().lower() in ("", "0", "off", "none"):
            return None
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "thorgym"
