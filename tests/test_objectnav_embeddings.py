"""GloVe vectors of the ObjectNav targets: pinned bit for bit to the values the earlier
hand-written parquet reader produced, so the switch to pyarrow changed nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from thorgym.datasets.objectnav_embeddings import (
    DIM,
    _embed,
    glove_files,
    read_parquet_strings,
    vocabulary,
)
from thorgym.tasks.objectnav import TARGET_TYPES

# sha256 of the vocabulary ("\n"-joined, row order) and of the float32 target vectors, as read
# by the hand-written Thrift/Snappy parquet reader this module used before pyarrow.
VOCAB_SHA256 = "029a7168ebc71f71e23e1f6ae94967234a13dcd64717754746c171be20d31a77"
TARGETS_SHA256 = "174d70b975c136d8c8eeed67a4a812edc5e9b909580bcd6dd269a1d91cdd8248"


def test_vocabulary_is_unchanged() -> None:
    _, index = glove_files()
    words = read_parquet_strings(index)
    assert len(words) == 400_000
    assert hashlib.sha256("\n".join(words).encode()).hexdigest() == VOCAB_SHA256
    assert vocabulary()["the"] == words.index("the")


def test_target_vectors_are_bit_identical() -> None:
    vec_path, _ = glove_files()
    out = _embed(tuple(TARGET_TYPES), vec_path)
    assert out.shape == (len(TARGET_TYPES), DIM) and out.dtype == np.float32
    assert hashlib.sha256(out.tobytes()).hexdigest() == TARGETS_SHA256


def test_not_a_parquet_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "index.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="index.parquet is not a readable parquet file"):
        read_parquet_strings(bad)
