"""The SQLite gallery's schema and its explicit migrations, one function per version step.

A new database is created at version 1 and migrated up like any old one, so every database
goes through the same steps. ``meta.schema_version`` records the version; version-1 databases
written before it was always set are recognised by their ``faces`` table. All steps of one
open run in one transaction: a database is migrated completely or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from indexer.errors import StoreCorrupt
from indexer.gallery_db import SCHEMA_VERSION

SCHEMA_V1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS faces (
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
    )""",
    "CREATE INDEX IF NOT EXISTS faces_label ON faces(label)",
    "CREATE INDEX IF NOT EXISTS faces_source ON faces(source)",
    "CREATE INDEX IF NOT EXISTS faces_hash ON faces(content_hash)",
    """CREATE TABLE IF NOT EXISTS crops (
        face INTEGER PRIMARY KEY REFERENCES faces(rowid) ON DELETE CASCADE,
        jpeg BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS files (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        content_hash TEXT NOT NULL
    )""",
)


def _create_v1(db: sqlite3.Connection) -> None:
    for statement in SCHEMA_V1:
        db.execute(statement)


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """Five-point landmarks per face (JSON ``[[x, y], ...]`` in image pixels), NULL if unknown."""
    db.execute("ALTER TABLE faces ADD COLUMN landmarks TEXT")


CHANGE_LOG = """CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'update', 'remove')),
    face INTEGER NOT NULL,
    id TEXT NOT NULL
)"""


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """The change log, so that a running service follows what the indexer writes."""
    db.execute(CHANGE_LOG)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: _create_v1,
    1: _v1_to_v2,
    2: _v2_to_v3,
}
"""Version n -> the step that brings a version-n database to version n + 1."""


def stored_version(db: sqlite3.Connection) -> int:
    """The schema version of the database: 0 for an empty file."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "faces" not in tables:
        return 0
    row = None
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def migrate(db: sqlite3.Connection, location: str) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction; returns the version found.

    ``db`` must be in autocommit mode (isolation_level None), as the store opens it.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        found = stored_version(db)
        if found > SCHEMA_VERSION:
            raise StoreCorrupt(
                f"the gallery database {location} has schema version {found}, newer than this "
                f"facefind reads ({SCHEMA_VERSION}): upgrade facefind to open it."
            )
        for version in range(found, SCHEMA_VERSION):
            MIGRATIONS[version](db)
        if found != SCHEMA_VERSION:
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found
