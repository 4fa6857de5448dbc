"""The PostgreSQL gallery's schema and its migrations, version for version the SQLite one's.

``schema_version`` holds one row. The steps of one open run in one transaction under an
advisory lock, so that replicas starting together migrate a database once, completely or not
at all (PostgreSQL's DDL is transactional).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from indexer.errors import StoreCorrupt
from indexer.gallery_db import SCHEMA_VERSION

MIGRATION_LOCK = 0x66616365  # "face": one advisory lock id for schema changes
WRITE_LOCK = 0x66696E64  # "find": every write holds it, so change numbers follow commit order

SCHEMA_V1 = (
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE faces (
        rowid bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        label text,
        source text NOT NULL,
        content_hash text NOT NULL,
        box text NOT NULL,
        score double precision NOT NULL,
        face_found integer NOT NULL,
        metadata text NOT NULL DEFAULT '{}',
        vector bytea NOT NULL,
        model text NOT NULL,
        created double precision NOT NULL
    )""",
    "CREATE INDEX faces_label ON faces(label)",
    "CREATE INDEX faces_source ON faces(source)",
    "CREATE INDEX faces_hash ON faces(content_hash)",
    """CREATE TABLE crops (
        face bigint PRIMARY KEY REFERENCES faces(rowid) ON DELETE CASCADE,
        jpeg bytea NOT NULL
    )""",
    """CREATE TABLE files (
        path text PRIMARY KEY,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        content_hash text NOT NULL
    )""",
    "CREATE TABLE schema_version (version integer NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
)


def _create_v1(db: psycopg.Connection) -> None:
    for statement in SCHEMA_V1:
        db.execute(statement)


def _v1_to_v2(db: psycopg.Connection) -> None:
    """Five-point landmarks per face (JSON ``[[x, y], ...]``), NULL if unknown."""
    db.execute("ALTER TABLE faces ADD COLUMN landmarks text")


def _v2_to_v3(db: psycopg.Connection) -> None:
    """The change log replicas follow; ``seq`` grows in commit order (see WRITE_LOCK)."""
    db.execute(
        """CREATE TABLE changes (
            seq bigserial PRIMARY KEY,
            op text NOT NULL CHECK (op IN ('add', 'update', 'remove')),
            face bigint NOT NULL,
            id text NOT NULL
        )"""
    )


MIGRATIONS: dict[int, Callable[[psycopg.Connection], None]] = {
    0: _create_v1,
    1: _v1_to_v2,
    2: _v2_to_v3,
}
"""Version n -> the step that brings a version-n database to version n + 1."""


def stored_version(db: psycopg.Connection) -> int:
    """The schema version of the database: 0 for an empty one."""
    if db.execute("SELECT to_regclass('schema_version')").fetchone() in (None, (None,)):
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: psycopg.Connection, location: str) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; returns the version found."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        found = stored_version(db)
        if found > SCHEMA_VERSION:
            raise StoreCorrupt(
                f"the gallery database {location} has schema version {found}, newer than this "
                f"facefind reads ({SCHEMA_VERSION}): upgrade facefind to open it."
            )
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](db)
        if found != SCHEMA_VERSION:
            db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    return found
