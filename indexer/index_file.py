"""The FAISS index file's life cycle: save it with a note, and on open load, catch up or rebuild.

The database is the source of truth; ``index.faiss`` is derived from it and ``index.json`` (the
note) says which state of the database the file reflects: the model, the removal count and the
largest row id it holds. On open, ``check`` decides between the saved file and a rebuild and
says why; rows added after the save are caught up rather than rebuilt, since row ids only grow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from indexer.atomic import atomic_write_text
from indexer.gallery_db import GalleryDatabase
from indexer.vector_index import VectorIndex

log = logging.getLogger(__name__)

INDEX_NAME, SIDECAR_NAME = "index.faiss", "index.json"
CHUNK = 50_000
"""Rows read from the database at a time when (re)building."""


class Reason(Enum):
    """Why the saved index cannot be used as it is."""

    NEW_GALLERY = "a new gallery has no saved index yet"
    NO_INDEX = "no saved index"
    NO_NOTE = "the index note (index.json) is missing or unreadable"
    OTHER_MODEL = "the saved index was made with another model"
    BEFORE_REMOVAL = "the saved index is older than the gallery's last removal"
    UNREADABLE = "the saved index file cannot be read"
    MISMATCH = "the saved index does not match the gallery"

    @property
    def expected(self) -> bool:
        """Nothing went wrong: worth an INFO line, not a WARNING."""
        return self is Reason.NEW_GALLERY


@dataclass(frozen=True)
class Rebuild:
    reason: Reason
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


@dataclass(frozen=True)
class Usable:
    """The saved index, good up to ``max_rowid``; later rows still need adding."""

    index: VectorIndex
    max_rowid: int


@dataclass(frozen=True)
class Note:
    model: str | None
    factory: str
    removals: str
    max_rowid: int


class IndexFile:
    """The index file and its note in a store directory; callers hold the store's lock."""

    def __init__(self, directory: Path, use_gpu: bool) -> None:
        self.path = directory / INDEX_NAME
        self.note_path = directory / SIDECAR_NAME
        self.use_gpu = use_gpu

    def check(self, db: GalleryDatabase, model: str | None, dim: int) -> Usable | Rebuild:
        """Load the saved index if it still describes the database, or say why not."""
        if not self.path.is_file():
            if not self.note_path.exists() and db.count() == 0:
                return Rebuild(Reason.NEW_GALLERY)
            return Rebuild(Reason.NO_INDEX)
        note = read_note(self.note_path)
        if note is None:
            return Rebuild(Reason.NO_NOTE)
        if note.model != model:
            return Rebuild(Reason.OTHER_MODEL, f"{note.model}, not {model}")
        if note.removals != str(db.removals()):
            return Rebuild(Reason.BEFORE_REMOVAL)
        try:
            index = VectorIndex.load(self.path, note.factory, self.use_gpu)
        except (RuntimeError, ValueError) as exc:
            return Rebuild(Reason.UNREADABLE, _last_line(exc))
        expected = db.count_upto(note.max_rowid)
        if index.ntotal != expected or index.dim != dim:
            return Rebuild(
                Reason.MISMATCH,
                f"it holds {index.ntotal} {index.dim}-d vectors, the gallery {expected} {dim}-d",
            )
        return Usable(index, note.max_rowid)

    def open(
        self, db: GalleryDatabase, model: str | None, dim: int, factory: str
    ) -> tuple[VectorIndex, int, int]:
        """The index for the database, how many rows were added to the saved one, and the
        largest row id it holds."""
        verdict = self.check(db, model, dim)
        if isinstance(verdict, Usable):
            added, max_rowid = catch_up(verdict.index, db, verdict.max_rowid)
            if added:
                log.info("added %d faces stored after the index was last saved", added)
            return verdict.index, added, max_rowid
        where = self.path.parent
        if verdict.reason is Reason.NEW_GALLERY:
            log.debug("a new gallery in %s: its search index starts empty", where)
        else:
            level = logging.INFO if verdict.reason.expected else logging.WARNING
            log.log(
                level, "rebuilding the search index of %s from the database: %s", where, verdict
            )
        removals = db.removals()  # before the build: a removal during it makes the note stale
        index, max_rowid = build(db, dim, factory, self.use_gpu)
        self.save(index, db, model, removals, max_rowid)
        return index, 0, max_rowid

    def save(
        self,
        index: VectorIndex,
        db: GalleryDatabase,
        model: str | None,
        removals: int | None = None,
        max_rowid: int | None = None,
    ) -> None:
        """The index file first, then the note: a note never claims more than the file has.

        ``removals`` and ``max_rowid`` are what the index reflects, where other processes may
        have written since (the database's own counts otherwise).
        """
        index.save(self.path)
        note = {
            "model": model,
            "factory": index.factory,
            "removals": str(db.removals() if removals is None else removals),
            "max_rowid": db.max_rowid() if max_rowid is None else max_rowid,
            "count": index.ntotal,
        }
        atomic_write_text(self.note_path, json.dumps(note))


def build(db: GalleryDatabase, dim: int, factory: str, use_gpu: bool) -> tuple[VectorIndex, int]:
    """A new index over every vector in the database, and the largest row id in it."""
    chunks = list(iter_vectors(db, 0))
    ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    empty = np.zeros((0, dim), dtype=np.float32)
    vectors = np.concatenate([c[1] for c in chunks]) if chunks else empty
    max_rowid = int(ids[-1]) if len(ids) else 0
    return VectorIndex.build(ids, vectors, dim, factory, use_gpu), max_rowid


def catch_up(index: VectorIndex, db: GalleryDatabase, after: int) -> tuple[int, int]:
    """Add the rows stored after row id ``after``; returns how many and the new largest id."""
    added = 0
    for ids, vectors in iter_vectors(db, after):
        index.add(ids, vectors)
        added += len(ids)
        after = int(ids[-1])
    return added, after


def read_note(path: Path) -> Note | None:
    """The note, or None when it is missing, not JSON or lacks a field."""
    try:
        data: Any = json.loads(path.read_text())
        return Note(
            model=data.get("model"),
            factory=str(data["factory"]),
            removals=str(data["removals"]),
            max_rowid=int(data["max_rowid"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def iter_vectors(
    db: GalleryDatabase, after: int = 0, lock: AbstractContextManager[Any] | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row ids, vectors) above ``after`` in chunks; ``lock`` is held per chunk, not between."""
    while True:
        with lock or nullcontext():
            ids, vectors = db.vectors(after, CHUNK)
        if len(ids) == 0:
            return
        yield ids, vectors
        after = int(ids[-1])


def _last_line(exc: Exception) -> str:
    """FAISS errors carry a C++ trace; its last line says what was wrong."""
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__
