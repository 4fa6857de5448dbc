"""The gallery store: the database is the source of truth, the FAISS index is derived from it.

Layout of a store directory::

    gallery.sqlite3   faces (vectors, boxes, landmarks, labels, metadata), crops, indexed files
    index.faiss       the FAISS index over the faces' vectors (rebuildable at any time)
    index.json        which state of the database the index file reflects

``GalleryStore`` joins the two halves under one lock: a ``GalleryDatabase`` keeps the rows,
each write one durable transaction; ``index_file`` saves the index now and then and, on open,
loads it, catches it up (new rows) or rebuilds it (removals, damage).

The database is SQLite in the directory, or a PostgreSQL server given by ``store_url``
(``postgresql://...``), shared by several processes; the directory then only caches the
index file. Either way ``sync`` brings the in-memory index up to the database's change log,
so that what other processes wrote becomes searchable here (``change_log.ChangeFollower``
calls it); the store's own writes go through the same path.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ConfigError, ModelMismatch, NotFound, StoreCorrupt, StoreUnavailable
from indexer.gallery_db import (
    SCHEMA_VERSION,
    FileState,
    GalleryDatabase,
    bind_model,
    is_postgres_url,
)
from indexer.index_file import INDEX_NAME, SIDECAR_NAME, IndexFile, build, catch_up, iter_vectors
from indexer.records import FaceRecord, Match, NewFace
from indexer.sqlite_db import SqliteGalleryDatabase, damaged
from indexer.vector_index import VectorIndex, choose_index, gpus_available

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite3"
CHANGES_CHUNK = 10_000
"""Change-log entries read at a time when syncing."""

__all__ = [
    "DB_NAME",
    "INDEX_NAME",
    "SCHEMA_VERSION",
    "SIDECAR_NAME",
    "GalleryStore",
    "store_exists",
]


class GalleryStore:
    """Thread-safe: one lock guards the database connection and the index."""

    def __init__(
        self,
        directory: Path | str,
        model: str | None = None,
        embedding_dim: int | None = None,
        index_factory: str = "auto",
        use_gpu: bool | None = None,
        store_url: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.store_url = store_url or None
        self.index_factory = index_factory
        self._use_gpu = gpus_available() if use_gpu is None else use_gpu
        self._lock = threading.RLock()
        self._db: GalleryDatabase = _open_database(self.directory, self.store_url)
        self.location = self._db.location
        self._file = IndexFile(index_cache(self.directory, self.store_url), self._use_gpu)
        self._pending = 0
        self._index: VectorIndex | None = None
        self._seq = 0
        """The last change-log entry the index reflects."""
        self._max_rowid = 0
        """The largest row id the index was given: rows above it are caught up by ``sync``."""
        try:
            self.model, self.dim = bind_model(self._db, model, embedding_dim, self.location)
            if self.dim is not None:
                # Read before the index is made: what commits meanwhile is applied again by
                # the next sync, harmlessly (removals are idempotent, adds go by row id).
                self._seq = self._db.last_change()
                self._index, self._pending, self._max_rowid = self._file.open(
                    self._db, self.model, self.dim, index_factory
                )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorrupt(damaged(self._db.location, exc)) from exc
        except BaseException:
            self._db.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._lock:
            try:
                if self._pending:
                    self.save_index()
            except StoreUnavailable as exc:  # the database has every row: nothing is lost
                log.warning("index not saved at close: %s", exc)
            finally:
                self._db.close()

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def index_type(self) -> str:
        return self._index.factory if self._index is not None else "none"

    @property
    def on_gpu(self) -> bool:
        return self._index is not None and self._index.on_gpu

    def count(self, label: str | None = None) -> int:
        with self._lock:
            return self._db.count(label)

    # ----------------------------------------------------------------- writes
    def add(
        self, faces: list[NewFace], files: Iterable[tuple[str, int, int, str]] = ()
    ) -> list[FaceRecord]:
        """Store faces (and the build's file states) in one transaction, then index them."""
        files = list(files)
        if not faces and not files:
            return []
        with self._lock:
            model, dim = self._require_model()
            vectors = [np.asarray(f.vector, dtype=np.float32).ravel() for f in faces]
            for face, vector in zip(faces, vectors, strict=True):
                _check(face, vector, dim)
            rows = self._db.insert(faces, files, model, time.time())
            if rows and self._index is None:  # built from the database: has the new rows
                self._seq = self._db.last_change()
                self._index, self._max_rowid = build(
                    self._db, dim, self.index_factory, self._use_gpu
                )
                self._pending += len(rows)
            elif rows:
                self._sync()  # our rows, and any another process committed before them
            return [record for _, record in rows]

    def remove(self, ids: Iterable[str]) -> int:
        with self._lock:
            return self._forget(self._db.remove_ids(list(ids)))

    def remove_label(self, label: str) -> int:
        with self._lock:
            return self._forget(self._db.remove_label(label))

    def remove_sources(self, sources: Iterable[str]) -> int:
        """Forget files (and their faces) that were deleted or changed on disk."""
        with self._lock:
            return self._forget(self._db.remove_sources(list(sources)))

    def update(
        self,
        id: str,
        label: str | None = None,
        metadata: dict[str, Any] | None = None,
        clear_label: bool = False,
    ) -> FaceRecord:
        with self._lock:
            record = self.get(id)
            new_label = None if clear_label else (label if label is not None else record.label)
            new_meta = record.metadata if metadata is None else metadata
            return _found(self._db.update(id, new_label, new_meta), id)

    # ----------------------------------------------------------------- reads
    def get(self, id: str) -> FaceRecord:
        with self._lock:
            return _found(self._db.get(id), id)

    def crop(self, id: str) -> bytes | None:
        with self._lock:
            return self._db.crop(id)

    def list(
        self, offset: int = 0, limit: int = 50, label: str | None = None
    ) -> tuple[list[FaceRecord], int]:
        with self._lock:
            return self._db.page(offset, limit, label)

    def labels(self) -> builtins.list[tuple[str, int]]:
        with self._lock:
            return self._db.labels()

    def find_by_hash(self, content_hash: str) -> builtins.list[FaceRecord]:
        with self._lock:
            return self._db.find_by_hash(content_hash)

    def file_states(self) -> dict[str, FileState]:
        """path -> (size, mtime_ns, content hash) of every file a build indexed."""
        with self._lock:
            return self._db.file_states()

    def search(self, vectors: np.ndarray, k: int) -> builtins.list[builtins.list[Match]]:
        """Top-k gallery faces per query vector, best first."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim or vectors.shape[-1])
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return [[] for _ in range(len(vectors))]
            if vectors.shape[1] != self._index.dim:
                raise ModelMismatch(
                    f"query vectors have {vectors.shape[1]} dimensions, the gallery {self._index.dim}"
                )
            sims, ids = self._index.search(vectors, k)
            by_rowid = self._db.by_rowids(sorted({int(i) for i in ids.ravel() if i >= 0}))
        return [
            [
                Match(by_rowid[int(i)], float(s))
                for s, i in zip(srow, irow, strict=True)
                if int(i) in by_rowid
            ]
            for srow, irow in zip(sims, ids, strict=True)
        ]

    def sync(self) -> int:
        """Apply the changes committed since the last sync (by any process); returns how many.

        New rows are caught up by row id, removed ones taken out by the change log; updates
        need nothing, since search results are read from the database.
        """
        with self._lock:
            return self._sync()

    def last_change(self) -> int:
        """The database's latest change number (a cheap poll for followers)."""
        with self._lock:
            return self._db.last_change()

    @property
    def synced_to(self) -> int:
        """The change number the in-memory index reflects."""
        return self._seq

    def vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (rowids, vectors) in chunks; the lock is let go between chunks."""
        return iter_vectors(self._db, 0, self._lock)

    # ----------------------------------------------------------------- index upkeep
    def save_index(self) -> None:
        """Persist the index with a note of the database state it reflects."""
        with self._lock:
            if self._index is None:
                return
            removals = self._db.removals()  # before the sync: a later removal makes it stale
            self._sync()
            self._file.save(self._index, self._db, self.model, removals, self._max_rowid)
            self._pending = 0

    def rebuild_index(self, factory: str | None = None) -> None:
        """Recreate the index from the database, re-choosing its type for the gallery's size."""
        with self._lock:
            if self.dim is None:
                return
            self._seq = self._db.last_change()
            self._index, self._max_rowid = build(
                self._db, self.dim, factory or self.index_factory, self._use_gpu
            )
            self.save_index()

    def optimize(self) -> bool:
        """Rebuild if the gallery grew or shrank past what its index type is chosen for."""
        with self._lock:
            if self.index_factory != "auto" or self._index is None or self.dim is None:
                return False
            if choose_index(self.count(), self.dim) == self._index.factory:
                return False
            self.rebuild_index()
            return True

    # ----------------------------------------------------------------- internals
    def _require_model(self) -> tuple[str, int]:
        if self.model is None or self.dim is None:
            raise ModelMismatch("this gallery was opened without a model and cannot take new faces")
        return self.model, self.dim

    def _forget(self, rowids: builtins.list[int]) -> int:
        """Drop removed rows from the index once the database committed their removal.

        Should we die before the index is saved again, the removal count makes the next open
        rebuild the index from the database.
        """
        if rowids:
            self._sync()
        return len(rowids)

    def _sync(self) -> int:
        """``sync`` under the lock: catch up new rows, then take out removed ones.

        Row ids are never reused, so the order does not matter: a row added and removed
        since the last sync is no longer in the database to be caught up.
        """
        if self._index is None:
            return 0
        applied = 0
        while changes := self._db.changes_after(self._seq, CHANGES_CHUNK):
            self._seq = changes[-1].seq
            applied += len(changes)
            added, self._max_rowid = catch_up(self._index, self._db, self._max_rowid)
            removed = np.array([c.rowid for c in changes if c.op == "remove"], dtype=np.int64)
            if len(removed) and not self._index.remove(removed):  # HNSW cannot: rebuilt
                self._index, self._max_rowid = build(
                    self._db, self._index.dim, self._index.factory, self._use_gpu
                )
            self._pending += added + len(removed)
        return applied


def store_exists(directory: Path | str, store_url: str | None = None) -> bool:
    """Whether a gallery is there to open: a server always counts (it may hold one)."""
    return is_postgres_url(store_url) or (Path(directory) / DB_NAME).is_file()


def index_cache(directory: Path, store_url: str | None) -> Path:
    """Where the index file lives: the store directory, or for a server a folder in it per
    database, so that one cache directory never mixes two galleries' indexes."""
    if not is_postgres_url(store_url):
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    from indexer.postgres_db import describe_url  # psycopg: the optional `postgres` extra

    assert store_url is not None
    digest = hashlib.sha256(describe_url(store_url).encode()).hexdigest()[:12]
    folder = directory / f"postgres-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open_database(directory: Path, store_url: str | None) -> GalleryDatabase:
    """SQLite in the directory unless a PostgreSQL URL is given; any other URL is refused."""
    if store_url is None:
        directory.mkdir(parents=True, exist_ok=True)
        return SqliteGalleryDatabase(directory / DB_NAME)
    if is_postgres_url(store_url):
        try:  # psycopg is the optional `postgres` extra: SQLite users need not install it
            from indexer.postgres_db import PostgresGalleryDatabase
        except ImportError as exc:
            raise ConfigError(
                f"{exc}: a PostgreSQL store needs `pip install 'facefind[postgres]'`"
            ) from exc
        return PostgresGalleryDatabase(store_url)
    raise ConfigError(f"unknown store URL {store_url!r}: use postgresql://user@host:port/database")


def _check(face: NewFace, vector: np.ndarray, dim: int) -> None:
    """Refuse a face before anything is written, so a bad one leaves the whole add undone."""
    if vector.shape[0] != dim:
        raise ModelMismatch(f"a {vector.shape[0]}-d vector cannot join a {dim}-d gallery")
    if face.landmarks is not None and len(face.landmarks) != 5:
        raise ValueError(f"landmarks are five (x, y) points, not {len(face.landmarks)}")


def _found(record: FaceRecord | None, id: str) -> FaceRecord:
    if record is None:
        raise NotFound(f"no gallery entry with id {id!r}")
    return record
