"""The gallery store: SQLite is the source of truth, the FAISS index is derived from it.

Layout of a store directory::

    gallery.sqlite3   faces (vectors, boxes, labels, metadata), their crops, indexed files
    index.faiss       the FAISS index over the faces' vectors (rebuildable at any time)
    index.json        which state of the database the index file reflects

Every write is one SQLite transaction (WAL, synchronous=FULL): once it returns, it survives
a kill -9 or a power cut. The index file is saved now and then; on open it is checked
against the database and caught up (new rows) or rebuilt (removals, damage, a new model).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import Conflict, ModelMismatch, NotFound, StoreCorrupt
from indexer.records import FaceRecord, Match, NewFace
from indexer.vector_index import VectorIndex, choose_index, gpus_available

log = logging.getLogger(__name__)

DB_NAME, INDEX_NAME, SIDECAR_NAME = "gallery.sqlite3", "index.faiss", "index.json"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    label TEXT,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    box TEXT NOT NULL,
    score REAL NOT NULL,
    face_found INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    vector BLOB NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_label ON faces(label);
CREATE INDEX IF NOT EXISTS faces_source ON faces(source);
CREATE INDEX IF NOT EXISTS faces_hash ON faces(content_hash);
CREATE TABLE IF NOT EXISTS crops (
    face INTEGER PRIMARY KEY REFERENCES faces(rowid) ON DELETE CASCADE,
    jpeg BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL
);
"""

_COLUMNS = (
    "rowid, id, label, source, content_hash, box, score, face_found, metadata, model, created"
)


class GalleryStore:
    """Thread-safe: one lock guards the connection and the index."""

    def __init__(
        self,
        directory: Path | str,
        model: str | None = None,
        embedding_dim: int | None = None,
        index_factory: str = "auto",
        use_gpu: bool | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index_factory = index_factory
        self._use_gpu = gpus_available() if use_gpu is None else use_gpu
        self._lock = threading.RLock()
        self._db = _connect(self.directory / DB_NAME)
        try:
            self.model, self.dim = self._bind_model(model, embedding_dim)
            self._pending = 0
            self._index = self._open_index()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreCorrupt(_damaged(self.directory / DB_NAME, exc)) from exc
        except BaseException:
            self._db.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._lock:
            if self._pending:
                self.save_index()
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
            if label is None:
                return self._db.execute("SELECT count(*) FROM faces").fetchone()[0]
            sql = "SELECT count(*) FROM faces WHERE label = ?"
            return self._db.execute(sql, (label,)).fetchone()[0]

    # ----------------------------------------------------------------- writes
    def add(
        self, faces: list[NewFace], files: Iterable[tuple[str, int, int, str]] = ()
    ) -> list[FaceRecord]:
        """Store faces (and the build's file states) in one transaction, then index them."""
        if not faces and not files:
            return []
        with self._lock:
            self._require_model()
            now = time.time()
            rows = []
            with self._transaction():
                for face in faces:
                    rows.append(self._insert(face, now))
                self._db.executemany(
                    "INSERT OR REPLACE INTO files(path, size, mtime_ns, content_hash) VALUES (?,?,?,?)",
                    list(files),
                )
            if rows:
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                vectors = np.stack([np.asarray(f.vector, dtype=np.float32) for f in faces])
                self._ensure_index().add(ids, vectors)
                self._pending += len(rows)
            return [r[1] for r in rows]

    def remove(self, ids: Iterable[str]) -> int:
        with self._lock:
            return self._remove_where(
                "id IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)
            )

    def remove_label(self, label: str) -> int:
        with self._lock:
            return self._remove_where("label = ?", (label,))

    def remove_sources(self, sources: Iterable[str]) -> int:
        """Forget files (and their faces) that were deleted or changed on disk."""
        sources = list(sources)
        with self._lock:
            arg = (json.dumps(sources),)
            removed = self._remove_where("source IN (SELECT value FROM json_each(?))", arg)
            with self._transaction():
                self._db.execute(
                    "DELETE FROM files WHERE path IN (SELECT value FROM json_each(?))", arg
                )
            return removed

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
            with self._transaction():
                self._db.execute(
                    "UPDATE faces SET label = ?, metadata = ? WHERE id = ?",
                    (new_label, json.dumps(new_meta), id),
                )
            return self.get(id)

    # ----------------------------------------------------------------- reads
    def get(self, id: str) -> FaceRecord:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM faces WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise NotFound(f"no gallery entry with id {id!r}")
        return _record(row)

    def crop(self, id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.jpeg FROM crops c JOIN faces f ON f.rowid = c.face WHERE f.id = ?", (id,)
            ).fetchone()
        return row[0] if row else None

    def list(
        self, offset: int = 0, limit: int = 50, label: str | None = None
    ) -> tuple[list[FaceRecord], int]:
        where, args = ("WHERE label = ?", (label,)) if label is not None else ("", ())
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM faces {where}", args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM faces {where} ORDER BY rowid LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_record(r) for r in rows], total

    def labels(self) -> list[tuple[str, int]]:
        with self._lock:
            sql = "SELECT label, count(*) FROM faces WHERE label IS NOT NULL GROUP BY label ORDER BY label"
            return [(r[0], r[1]) for r in self._db.execute(sql)]

    def find_by_hash(self, content_hash: str) -> list[FaceRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM faces WHERE content_hash = ? ORDER BY rowid",
                (content_hash,),
            ).fetchall()
        return [_record(r) for r in rows]

    def file_states(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, content hash) of every file a build indexed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, content_hash FROM files"
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def search(self, vectors: np.ndarray, k: int) -> list[list[Match]]:
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
            wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM faces WHERE rowid IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            ).fetchall()
        by_rowid = {r[0]: _record(r) for r in rows}
        return [
            [
                Match(by_rowid[int(i)], float(s))
                for s, i in zip(srow, irow, strict=True)
                if int(i) in by_rowid
            ]
            for srow, irow in zip(sims, ids, strict=True)
        ]

    def vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (rowids, vectors) in chunks, for rebuilding the index."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT rowid, vector FROM faces WHERE rowid > ? ORDER BY rowid LIMIT 50000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (
                np.array([r[0] for r in rows], dtype=np.int64),
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                    len(rows), -1
                ),
            )

    # ----------------------------------------------------------------- index upkeep
    def save_index(self) -> None:
        """Persist the index with a note of the database state it reflects."""
        with self._lock:
            if self._index is None:
                return
            self._index.save(self.directory / INDEX_NAME)
            sidecar = {
                "model": self.model,
                "factory": self._index.factory,
                "removals": self._meta("removals", "0"),
                "max_rowid": self._max_rowid(),
                "count": self._index.ntotal,
            }
            _write_json(self.directory / SIDECAR_NAME, sidecar)
            self._pending = 0

    def rebuild_index(self, factory: str | None = None) -> None:
        """Recreate the index from SQLite, re-choosing its type for the gallery's size."""
        with self._lock:
            self._index = self._build_index(factory or self.index_factory)
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
    def _bind_model(self, model: str | None, dim: int | None) -> tuple[str | None, int | None]:
        stored = self._meta("model")
        stored_dim = self._meta("embedding_dim")
        if stored is not None and model is not None and stored != model:
            raise ModelMismatch(
                f"the gallery in {self.directory} was built with model {stored}, not {model}: "
                "searching it with another model gives meaningless results. Use the same "
                "--model, or index into a new --index directory."
            )
        if stored is None and model is not None:
            if dim is None:
                raise ValueError("a new gallery needs the embedding size of its model")
            with self._transaction():
                self._set_meta("model", model)
                self._set_meta("embedding_dim", str(dim))
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            return model, dim
        return stored, int(stored_dim) if stored_dim else dim

    def _require_model(self) -> None:
        if self.model is None or self.dim is None:
            raise ModelMismatch("this gallery was opened without a model and cannot take new faces")

    def _open_index(self) -> VectorIndex | None:
        if self.dim is None:
            return None
        sidecar = _read_json(self.directory / SIDECAR_NAME)
        path = self.directory / INDEX_NAME
        try:
            if sidecar is None or not path.is_file():
                raise ValueError("no saved index")
            if sidecar.get("model") != self.model or sidecar.get("removals") != self._meta(
                "removals", "0"
            ):
                raise ValueError("the saved index is older than the gallery's last removal")
            index = VectorIndex.load(path, sidecar["factory"], self._use_gpu)
            max_rowid = int(sidecar["max_rowid"])
            expected = self._db.execute(
                "SELECT count(*) FROM faces WHERE rowid <= ?", (max_rowid,)
            ).fetchone()[0]
            if index.ntotal != expected or index.dim != self.dim:
                raise ValueError(
                    f"the saved index holds {index.ntotal} vectors, the gallery {expected}"
                )
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            log.warning(
                "rebuilding the search index of %s from the database: %s", self.directory, exc
            )
            index = self._build_index(self.index_factory)
            self._index = index
            self.save_index()
            return index
        caught_up = self._catch_up(index, max_rowid)
        if caught_up:
            log.info("added %d faces stored after the index was last saved", caught_up)
            self._pending = caught_up
        return index

    def _catch_up(self, index: VectorIndex, after: int) -> int:
        rows = self._db.execute(
            "SELECT rowid, vector FROM faces WHERE rowid > ? ORDER BY rowid", (after,)
        ).fetchall()
        if rows:
            index.add(
                np.array([r[0] for r in rows], dtype=np.int64),
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
                    len(rows), -1
                ),
            )
        return len(rows)

    def _build_index(self, factory: str) -> VectorIndex:
        chunks = list(self.vectors())
        ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        vecs = (
            np.concatenate([c[1] for c in chunks])
            if chunks
            else np.zeros((0, self.dim), dtype=np.float32)
        )
        return VectorIndex.build(ids, vecs, self.dim, factory, self._use_gpu)

    def _ensure_index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._build_index(self.index_factory)
        return self._index

    def _insert(self, face: NewFace, now: float) -> tuple[int, FaceRecord]:
        vector = np.asarray(face.vector, dtype=np.float32).ravel()
        if vector.shape[0] != self.dim:
            raise ModelMismatch(f"a {vector.shape[0]}-d vector cannot join a {self.dim}-d gallery")
        face_id = face.id or uuid.uuid4().hex
        try:
            cur = self._db.execute(
                "INSERT INTO faces(id, label, source, content_hash, box, score, face_found, metadata,"
                " vector, model, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    face_id,
                    face.label,
                    face.source,
                    face.content_hash,
                    json.dumps(list(face.box)),
                    float(face.score),
                    int(face.face_found),
                    json.dumps(face.metadata),
                    vector.tobytes(),
                    self.model,
                    now,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a gallery entry with id {face_id!r} already exists") from exc
        rowid = int(cur.lastrowid)
        if face.crop_jpeg is not None:
            self._db.execute("INSERT INTO crops(face, jpeg) VALUES (?, ?)", (rowid, face.crop_jpeg))
        record = FaceRecord(
            face_id,
            face.label,
            face.source,
            face.content_hash,
            tuple(face.box),
            float(face.score),
            face.face_found,
            dict(face.metadata),
            self.model,
            now,
        )
        return rowid, record

    def _remove_where(self, where: str, args: tuple[Any, ...]) -> int:
        with self._transaction():
            rowids = [
                r[0] for r in self._db.execute(f"SELECT rowid FROM faces WHERE {where}", args)
            ]
            if not rowids:
                return 0
            self._db.execute(f"DELETE FROM faces WHERE {where}", args)
            self._set_meta("removals", str(int(self._meta("removals", "0")) + 1))
        # Committed: the index follows. Should we die here, the removal counter makes the
        # next open rebuild the index from the database.
        if self._index is not None and not self._index.remove(np.array(rowids, dtype=np.int64)):
            self._index = self._build_index(self._index.factory)
        self._pending += len(rowids)
        return len(rowids)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _max_rowid(self) -> int:
        return self._db.execute("SELECT coalesce(max(rowid), 0) FROM faces").fetchone()[0]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    db: sqlite3.Connection | None = None
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        # Before anything writes: a damaged page found now is reported, not served (or
        # written over) later. It reads the file once: 0.2 s for 400 MB cached, disk speed
        # (5 s here) cold.
        verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict.strip().splitlines()[-1])
        db.executescript(SCHEMA)
        db.execute("SELECT count(*) FROM faces").fetchone()
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        raise StoreCorrupt(_damaged(path, exc)) from exc
    return db


def _damaged(path: Path, exc: Exception) -> str:
    return (
        f"the gallery database {path} is damaged ({exc}). Nothing was changed: restore it "
        "from a backup, or move it away to start an empty gallery."
    )


def _record(row: tuple[Any, ...]) -> FaceRecord:
    _, id_, label, source, chash, box, score, found, meta, model, created = row
    return FaceRecord(
        id_,
        label,
        source,
        chash,
        tuple(json.loads(box)),
        score,
        bool(found),
        json.loads(meta),
        model,
        created,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
