"""Persons and their faces, kept in the gallery's own SQLite file beside the faces.

Two tables of their own, created here (``CREATE TABLE IF NOT EXISTS``) rather than by a schema
migration of the gallery, so that the gallery database (and its planned PostgreSQL twin) does
not have to know about persons:

    people(id, label, created, cover)        one row per person; cover = its representative face
    person_faces(face_id, person_id, by_user) face -> person, keyed by the face's stable id

A face with ``person_id`` NULL and ``by_user`` 1 was moved out by a user and is never grouped
again; a face with no row is unassigned and waits for company. Rows of faces deleted from the
gallery are ignored when read (joined to ``faces``) and dropped at the next clustering.
Each call opens its own short connection (WAL), so the CLI, the service and the indexer may
all use the file at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT,
        created REAL NOT NULL,
        cover TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS person_faces (
        face_id TEXT PRIMARY KEY,
        person_id INTEGER REFERENCES people(id) ON DELETE CASCADE,
        by_user INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS person_faces_person ON person_faces(person_id)",
)
_PERSONS = """
    SELECT p.id, p.label, count(f.id) AS n,
           coalesce(max(CASE WHEN f.id = p.cover THEN f.id END), min(f.id))
    FROM people p JOIN person_faces pf ON pf.person_id = p.id JOIN faces f ON f.id = pf.face_id
"""


@dataclass(frozen=True)
class Person:
    id: int
    label: str | None
    faces: int
    cover: str
    """The id of the face that best represents the person (nearest its members' mean)."""


@dataclass
class Faces:
    """The gallery's faces as clustering reads them, in one snapshot."""

    ids: list[str]
    labels: list[str | None]
    vectors: np.ndarray


class PeopleStore:
    """Persons of the gallery in ``path`` (its ``gallery.sqlite3``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no gallery database at {self.path}")
        with self._connect() as db:
            for statement in SCHEMA:
                db.execute(statement)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per call; a write is one BEGIN IMMEDIATE ... COMMIT transaction."""
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ----------------------------------------------------------------- reads
    def faces(self) -> tuple[Faces, dict[str, tuple[int | None, bool]]]:
        """Every face (id, label, vector) and every stored assignment, in one snapshot."""
        with self._connect() as db:
            rows = db.execute("SELECT id, label, vector FROM faces ORDER BY rowid").fetchall()
            assigned = db.execute("SELECT face_id, person_id, by_user FROM person_faces")
            assignments = {r[0]: (r[1], bool(r[2])) for r in assigned}
        if rows:
            flat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
            vectors = flat.reshape(len(rows), -1)
        else:
            vectors = np.zeros((0, 0), dtype=np.float32)
        return Faces([r[0] for r in rows], [r[1] for r in rows], vectors), assignments

    def people(self, offset: int = 0, limit: int = 50) -> tuple[list[Person], int, int]:
        """Persons, most faces first; how many persons there are; faces in no person."""
        with self._connect() as db:
            sql = f"{_PERSONS} GROUP BY p.id ORDER BY n DESC, p.id LIMIT ? OFFSET ?"
            found = [Person(*r) for r in db.execute(sql, (limit, offset))]
            total = db.execute(
                "SELECT count(DISTINCT pf.person_id) FROM person_faces pf "
                "JOIN faces f ON f.id = pf.face_id WHERE pf.person_id IS NOT NULL"
            ).fetchone()[0]
            unassigned = db.execute(
                "SELECT count(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM person_faces pf "
                "WHERE pf.face_id = f.id AND pf.person_id IS NOT NULL)"
            ).fetchone()[0]
        return found, int(total), int(unassigned)

    def gallery_model(self) -> str | None:
        """The fingerprint the gallery's vectors were made with (its meta row)."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        return row[0] if row else None

    def person(self, person_id: int) -> Person | None:
        with self._connect() as db:
            row = db.execute(f"{_PERSONS} WHERE p.id = ? GROUP BY p.id", (person_id,)).fetchone()
        return Person(*row) if row else None

    def face_ids(self, person_id: int, offset: int = 0, limit: int = -1) -> list[str]:
        """The person's faces in gallery order."""
        sql = (
            "SELECT f.id FROM person_faces pf JOIN faces f ON f.id = pf.face_id "
            "WHERE pf.person_id = ? ORDER BY f.rowid LIMIT ? OFFSET ?"
        )
        with self._connect() as db:
            return [r[0] for r in db.execute(sql, (person_id, limit, offset))]

    # ----------------------------------------------------------------- user actions
    def set_label(self, person_id: int, label: str | None) -> bool:
        with self._connect(write=True) as db:
            cur = db.execute("UPDATE people SET label = ? WHERE id = ?", (label, person_id))
        return cur.rowcount > 0

    def merge(self, into: int, other: int) -> list[str]:
        """Move every face of ``other`` into ``into`` and forget ``other``; the moved ids."""
        with self._connect(write=True) as db:
            moved = [
                r[0]
                for r in db.execute(
                    "SELECT face_id FROM person_faces WHERE person_id = ?", (other,)
                )
            ]
            db.execute("UPDATE person_faces SET person_id = ? WHERE person_id = ?", (into, other))
            db.execute("DELETE FROM people WHERE id = ?", (other,))
        return moved

    def move_out(self, person_id: int, face_id: str) -> bool:
        """Take a face out of its person for good: later clustering leaves it alone."""
        with self._connect(write=True) as db:
            cur = db.execute(
                "UPDATE person_faces SET person_id = NULL, by_user = 1 "
                "WHERE face_id = ? AND person_id = ?",
                (face_id, person_id),
            )
            db.execute(
                "DELETE FROM people WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM person_faces WHERE person_id = ?)",
                (person_id, person_id),
            )
        return cur.rowcount > 0

    # ----------------------------------------------------------------- clustering results
    def save(
        self,
        assignments: dict[str, int],
        new_people: dict[int, tuple[str | None, str]],
        covers: dict[int, str],
        replace: bool,
        relabel: dict[int, str | None] | None = None,
    ) -> dict[int, int]:
        """Store face -> person (negative keys of ``new_people`` are persons to create, with
        (label, cover)) in one transaction; ``replace`` first drops every automatic assignment
        (a full run); ``relabel`` names existing persons. Returns the new persons' ids.
        Persons left with no face are deleted."""
        now = time.time()
        with self._connect(write=True) as db:
            if replace:
                db.execute("DELETE FROM person_faces WHERE by_user = 0")
            db.execute("DELETE FROM person_faces WHERE face_id NOT IN (SELECT id FROM faces)")
            created = {}
            for key, (label, cover) in new_people.items():
                cur = db.execute(
                    "INSERT INTO people(label, created, cover) VALUES (?, ?, ?)",
                    (label, now, cover),
                )
                created[key] = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT OR REPLACE INTO person_faces(face_id, person_id, by_user) VALUES (?,?,0)",
                [(f, created.get(p, p)) for f, p in assignments.items()],
            )
            db.executemany(
                "UPDATE people SET cover = ? WHERE id = ?", [(c, p) for p, c in covers.items()]
            )
            db.executemany(
                "UPDATE people SET label = ? WHERE id = ?",
                [(label, p) for p, label in (relabel or {}).items()],
            )
            db.execute(
                "DELETE FROM people WHERE id NOT IN (SELECT person_id FROM person_faces "
                "WHERE person_id IS NOT NULL)"
            )
        return created

    def labels(self) -> dict[int, str | None]:
        with self._connect() as db:
            return {r[0]: r[1] for r in db.execute("SELECT id, label FROM people")}
