"""Atomic file replacement: a reader sees the old file or the new one, never a torn one.

The new content goes to a temporary file beside the target (same file system, so the rename
is atomic), is flushed to disk, and is then renamed over the target. On any error the
temporary file is removed and the target is left as it was. Temporary files are named
``.<name>.<random>.tmp``, so a kill in the middle leaves only such a file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path for a writer that wants a file name (FAISS, numpy).

    When the block ends without an error, the file written there replaces ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextmanager
def atomic_open(path: Path | str) -> Iterator[BinaryIO]:
    """Yield a binary file to write; it replaces ``path`` when the block ends cleanly."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        yield fh
        fh.flush()


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some file systems cannot sync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
