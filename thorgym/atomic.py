"""Atomic file writes: readers see the old file or the complete new one, never a partial write.

Every writer in thorgym (checkpoints, metrics, generated datasets, results files) goes through
:func:`atomic_writer`, so a crash or a kill leaves no truncated file under the final name.
Standard library only: importing it imports neither torch nor NumPy.

Temporary files are named ``.<name>.<pid>.<random>.tmp`` next to the target. A process killed
mid-write (SIGKILL, power loss) cannot remove its own; the next write of the same target removes
those whose process is gone. A failed write (a full disk, a quota) raises an ``OSError`` with
the original ``errno`` whose message names the file and says the previous version is intact.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_writer", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Remove temporary files for ``name`` left by writers that died (their pid is gone)."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[^.]+\.tmp(\.[^.]*)?$")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:  # the writer is dead: its file can never be completed
            try:
                os.unlink(entry.path)
            except OSError:
                pass
        except (PermissionError, OverflowError):  # alive under another user / not a pid
            pass


def _failed(path: Path, e: OSError) -> OSError:
    """The same error (same errno), with a message that names the file and what is left."""
    hint = "; free some disk space and retry" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    reason = e.strerror or str(e)
    return OSError(
        e.errno, f"{reason}: writing {path} failed, the previous version (if any) is unchanged{hint}"
    )


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Yield a binary file to write; on success it replaces ``path`` in one step.

    The data goes to a temporary file in the same folder (so ``os.replace`` is atomic), is
    flushed and fsynced, gets the permissions a plain ``open()`` would give, then is moved over
    ``path``. On any error the temporary file is removed and ``path`` is untouched. Missing
    parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)  # mkstemp creates 0600 files
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None and str(path) not in str(e):
            raise _failed(path, e) from e
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) for writers that need a file name, e.g.
    ffmpeg or matplotlib; on success it replaces ``path`` in one step, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path.parent, path.stem)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.stem), suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)  # mkstemp creates 0600 files: give what a plain open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and str(path) not in str(e):
            raise _failed(path, e) from e
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`); returns the path."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded as ``encoding`` (newlines kept as given)."""
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON (UTF-8, trailing newline) to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))
