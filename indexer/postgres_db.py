"""The gallery database on a PostgreSQL server: one source of truth for several replicas.

Rows are encoded as in SQLite (``sqlite_rows``: JSON text for boxes, metadata, landmarks;
vectors and crops as bytea), so both back ends read back the same records. Every write is one
transaction that also appends to the change log and sends a NOTIFY, both taking effect at
commit. Writes hold one advisory lock, so row ids and change numbers are handed out in commit
order: a follower that has applied change n has seen every change below it.

A server that cannot be reached is ``StoreUnavailable`` (a 503 in the service), never a crash:
the pool reconnects by itself once the server is back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from indexer.errors import Conflict, StoreUnavailable
from indexer.gallery_db import Change, ChangeOp, FileState
from indexer.postgres_schema import WRITE_LOCK, migrate, stored_version
from indexer.records import FaceRecord, NewFace
from indexer.sqlite_rows import COLUMNS, decode, encode, new_record

CHANNEL = "facefind_changes"
"""NOTIFY channel: the payload is the latest change number of the committed write."""
CONNECT_TIMEOUT_S = 2.0
"""How long a request waits for a connection before it is answered 503."""


def describe_url(url: str) -> str:
    """``postgresql://host:port/db`` without user or password, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable address)"
    host = parts.get("host") or "localhost"
    return f"postgresql://{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class PostgresGalleryDatabase:
    """A connection pool; callers serialise calls (the store's lock), the pool survives outages."""

    def __init__(self, url: str, max_connections: int = 4) -> None:
        self.url = url
        self.location = describe_url(url)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "connect_timeout": 5},
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S,
            reconnect_timeout=24 * 3600,
            name="facefind",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10)
            with self._connection() as conn:
                migrate(conn, self.location)
        except psycopg.OperationalError as exc:
            self._pool.close()
            raise StoreUnavailable(unavailable(self.location, exc)) from exc
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def schema_version(self) -> int:
        with self._connection() as conn:
            return stored_version(conn)

    # ----------------------------------------------------------------- model and counters
    def model_binding(self) -> tuple[str | None, int | None]:
        dim = self._meta("embedding_dim")
        return self._meta("model"), int(dim) if dim else None

    def bind_model(self, model: str, dim: int) -> None:
        with self._write() as conn:  # the first replica to bind wins; bind_model checks later
            conn.execute(
                "INSERT INTO meta VALUES ('model', %s), ('embedding_dim', %s)"
                " ON CONFLICT (key) DO NOTHING",
                (model, str(dim)),
            )

    def removals(self) -> int:
        return int(self._meta("removals") or 0)

    def max_rowid(self) -> int:
        return int(self._one("SELECT coalesce(max(rowid), 0) FROM faces"))

    def count(self, label: str | None = None) -> int:
        if label is None:
            return int(self._one("SELECT count(*) FROM faces"))
        return int(self._one("SELECT count(*) FROM faces WHERE label = %s", label))

    def count_upto(self, rowid: int) -> int:
        return int(self._one("SELECT count(*) FROM faces WHERE rowid <= %s", rowid))

    # ----------------------------------------------------------------- writes
    def insert(
        self,
        faces: Sequence[NewFace],
        files: Iterable[tuple[str, int, int, str]],
        model: str,
        now: float,
    ) -> list[tuple[int, FaceRecord]]:
        files = list(files)
        with self._write() as conn:
            rows = [_insert(conn, face, model, now) for face in faces]
            _log(conn, "add", [(rowid, record.id) for rowid, record in rows])
            if files:
                conn.cursor().executemany(
                    "INSERT INTO files(path, size, mtime_ns, content_hash) VALUES (%s,%s,%s,%s)"
                    " ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size,"
                    " mtime_ns = EXCLUDED.mtime_ns, content_hash = EXCLUDED.content_hash",
                    files,
                )
        return rows

    def remove_ids(self, ids: Sequence[str]) -> list[int]:
        with self._write() as conn:
            return _remove_where(conn, "id = ANY(%s)", list(ids))

    def remove_label(self, label: str) -> list[int]:
        with self._write() as conn:
            return _remove_where(conn, "label = %s", label)

    def remove_sources(self, sources: Sequence[str]) -> list[int]:
        with self._write() as conn:
            removed = _remove_where(conn, "source = ANY(%s)", list(sources))
            conn.execute("DELETE FROM files WHERE path = ANY(%s)", (list(sources),))
        return removed

    def update(self, id: str, label: str | None, metadata: dict[str, Any]) -> FaceRecord | None:
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE faces SET label = %s, metadata = %s WHERE id = %s RETURNING {COLUMNS}",
                (label, json.dumps(metadata), id),
            ).fetchone()
            if row is not None:
                _log(conn, "update", [(row[0], id)])
        return decode(row) if row is not None else None

    # ----------------------------------------------------------------- reads
    def get(self, id: str) -> FaceRecord | None:
        row = self._fetch(f"SELECT {COLUMNS} FROM faces WHERE id = %s", id)
        return decode(row[0]) if row else None

    def by_rowids(self, rowids: Sequence[int]) -> dict[int, FaceRecord]:
        sql = f"SELECT {COLUMNS} FROM faces WHERE rowid = ANY(%s)"
        return {row[0]: decode(row) for row in self._fetch(sql, [int(r) for r in rowids])}

    def crop(self, id: str) -> bytes | None:
        sql = "SELECT c.jpeg FROM crops c JOIN faces f ON f.rowid = c.face WHERE f.id = %s"
        rows = self._fetch(sql, id)
        return bytes(rows[0][0]) if rows else None

    def page(self, offset: int, limit: int, label: str | None) -> tuple[list[FaceRecord], int]:
        where, args = ("WHERE label = %s", (label,)) if label is not None else ("", ())
        total = int(self._one(f"SELECT count(*) FROM faces {where}", *args))
        sql = f"SELECT {COLUMNS} FROM faces {where} ORDER BY rowid LIMIT %s OFFSET %s"
        return [decode(r) for r in self._fetch(sql, *args, limit, offset)], total

    def find_by_hash(self, content_hash: str) -> list[FaceRecord]:
        sql = f"SELECT {COLUMNS} FROM faces WHERE content_hash = %s ORDER BY rowid"
        return [decode(r) for r in self._fetch(sql, content_hash)]

    def labels(self) -> list[tuple[str, int]]:
        sql = "SELECT label, count(*) FROM faces WHERE label IS NOT NULL GROUP BY label ORDER BY label"
        return [(r[0], int(r[1])) for r in self._fetch(sql)]

    def file_states(self) -> dict[str, FileState]:
        rows = self._fetch("SELECT path, size, mtime_ns, content_hash FROM files")
        return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in rows}

    def vectors(self, after: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        sql = "SELECT rowid, vector FROM faces WHERE rowid > %s ORDER BY rowid LIMIT %s"
        rows = self._fetch(sql, after, limit)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
        return ids, vectors.reshape(len(rows), -1)

    def last_change(self) -> int:
        return int(self._one("SELECT coalesce(max(seq), 0) FROM changes"))

    def changes_after(self, seq: int, limit: int) -> list[Change]:
        sql = "SELECT seq, op, face, id FROM changes WHERE seq > %s ORDER BY seq LIMIT %s"
        return [Change(int(r[0]), r[1], int(r[2]), r[3]) for r in self._fetch(sql, seq, limit)]

    def ping(self) -> None:
        """Raises StoreUnavailable when the server cannot be reached."""
        self._one("SELECT 1")

    # ----------------------------------------------------------------- internals
    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; a server that cannot be reached is StoreUnavailable."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(unavailable(self.location, exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection]:
        """One transaction holding the write lock (see the module's docstring)."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield conn

    def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _one(self, sql: str, *args: Any) -> Any:
        return self._fetch(sql, *args)[0][0]

    def _meta(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = %s", key)
        return rows[0][0] if rows else None


def _insert(
    conn: psycopg.Connection, face: NewFace, model: str, now: float
) -> tuple[int, FaceRecord]:
    vector = np.asarray(face.vector, dtype=np.float32).ravel()
    face_id = face.id or uuid.uuid4().hex
    record = new_record(face, face_id, model, now)
    columns = COLUMNS.removeprefix("rowid, ")
    try:
        with conn.transaction():  # a savepoint: the Conflict is raised, the outer one rolls back
            row = conn.execute(
                f"INSERT INTO faces({columns}, vector) VALUES ({', '.join(['%s'] * 12)})"
                " RETURNING rowid",
                (*encode(record), vector.tobytes()),
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(f"a gallery entry with id {face_id!r} already exists") from exc
    assert row is not None
    rowid = int(row[0])
    if face.crop_jpeg is not None:
        conn.execute("INSERT INTO crops(face, jpeg) VALUES (%s, %s)", (rowid, face.crop_jpeg))
    return rowid, record


def _remove_where(conn: psycopg.Connection, where: str, arg: Any) -> list[int]:
    """Inside a write: delete faces (crops cascade), count the removal, log it."""
    rows = conn.execute(f"DELETE FROM faces WHERE {where} RETURNING rowid, id", (arg,)).fetchall()
    if rows:
        conn.execute(
            "INSERT INTO meta VALUES ('removals', '1') ON CONFLICT (key)"
            " DO UPDATE SET value = (meta.value::bigint + 1)::text"
        )
        _log(conn, "remove", [(int(r[0]), r[1]) for r in rows])
    return [int(r[0]) for r in rows]


def _log(conn: psycopg.Connection, op: ChangeOp, faces: Sequence[tuple[int, str]]) -> None:
    """Change-log entries and a NOTIFY, both part of the write's transaction."""
    if not faces:
        return
    row = conn.execute(
        "INSERT INTO changes(op, face, id) SELECT %s, f, i FROM unnest(%s::bigint[], %s::text[])"
        " AS t(f, i) RETURNING seq",
        (op, [f[0] for f in faces], [f[1] for f in faces]),
    ).fetchall()
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(max(r[0] for r in row))))


def unavailable(location: str, exc: Exception) -> str:
    """The sentence for a server that cannot be reached."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"The gallery database {location} cannot be reached ({reason}). Nothing was changed; "
        "try again in a moment."
    )
