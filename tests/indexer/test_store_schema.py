"""Schema versions: a version-1 gallery opens migrated, with every row; landmarks round-trip."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest
from postgres_server import PostgresServer

from indexer import postgres_schema, sqlite_schema
from indexer.errors import StoreCorrupt
from indexer.records import NewFace
from indexer.sqlite_schema import SCHEMA_V1
from indexer.store import DB_NAME, SCHEMA_VERSION, GalleryStore

DIM = 8
FIVE = [(10.0, 12.0), (20.0, 12.5), (15.0, 18.0), (11.0, 24.0), (19.5, 24.0)]


def _vector(i: int) -> np.ndarray:
    v = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _make_v1(folder: Path, n: int = 3) -> None:
    """A gallery as facefind wrote it before landmarks, made with raw SQL only."""
    db = sqlite3.connect(folder / DB_NAME)
    for statement in SCHEMA_V1:
        db.execute(statement)
    db.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?)",
        [("model", "m1"), ("embedding_dim", str(DIM)), ("schema_version", "1")],
    )
    for i in range(n):
        db.execute(
            "INSERT INTO faces(id, label, source, content_hash, box, score, face_found,"
            " metadata, vector, model, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (f"f{i}", "ann", f"/p/{i}.jpg", f"h{i}", "[1, 2, 3, 4]", 0.9, 1,
             json.dumps({"i": i}), _vector(i).tobytes(), "m1", 1000.0 + i),
        )  # fmt: skip
    db.execute("INSERT INTO crops(face, jpeg) VALUES (1, ?)", (b"\xff\xd8jpeg",))
    db.execute("INSERT INTO files VALUES ('/p/0.jpg', 10, 20, 'h0')")
    db.commit()
    db.close()


def _columns(folder: Path) -> list[str]:
    with sqlite3.connect(folder / DB_NAME) as db:
        return [r[1] for r in db.execute("PRAGMA table_info(faces)")]


def _version(folder: Path) -> str:
    with sqlite3.connect(folder / DB_NAME) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]


def test_a_version_1_gallery_is_migrated_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    _make_v1(tmp_path)
    assert "landmarks" not in _columns(tmp_path)
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as store:
        assert store._db.schema_version() == SCHEMA_VERSION == 3
        assert store.count() == 3 and store.crop("f0") == b"\xff\xd8jpeg"
        old = store.get("f2")
        assert (old.box, old.metadata, old.created, old.landmarks) == (
            (1, 2, 3, 4),
            {"i": 2},
            1002.0,
            None,
        )
        assert store.file_states() == {"/p/0.jpg": (10, 20, "h0")}
        assert store.search(_vector(1), 1)[0][0].record.id == "f1"
        new = NewFace(_vector(9), "/p/9.jpg", "h9", (0, 0, 5, 5), 0.8, True, landmarks=FIVE)
        (added,) = store.add([new])
        assert added.landmarks == FIVE and store.get(added.id).landmarks == FIVE
    assert "landmarks" in _columns(tmp_path) and _version(tmp_path) == str(SCHEMA_VERSION)
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as store:  # once only
        assert store.count() == 4 and store.get(added.id).landmarks == FIVE


def test_a_failed_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_v1(tmp_path)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE faces ADD COLUMN landmarks TEXT")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(sqlite_schema.MIGRATIONS, 1, half_done)
    with pytest.raises(StoreCorrupt):
        GalleryStore(tmp_path, "m1", DIM, use_gpu=False)
    assert "landmarks" not in _columns(tmp_path) and _version(tmp_path) == "1"
    monkeypatch.undo()
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as store:
        assert store.count() == 3


def test_a_gallery_from_a_newer_facefind_is_refused_untouched(tmp_path: Path) -> None:
    GalleryStore(tmp_path, "m1", DIM, use_gpu=False).close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreCorrupt, match="upgrade facefind"):
        GalleryStore(tmp_path, "m1", DIM, use_gpu=False)
    assert _version(tmp_path) == "99"


def test_a_new_gallery_starts_at_the_current_version(tmp_path: Path) -> None:
    GalleryStore(tmp_path).close()  # even opened without a model
    assert _version(tmp_path) == str(SCHEMA_VERSION) and "landmarks" in _columns(tmp_path)


def test_faces_without_landmarks_read_back_none_and_bad_landmarks_are_refused(
    tmp_path: Path,
) -> None:
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as store:
        (plain,) = store.add([NewFace(_vector(1), "/a.jpg", "a", (0, 0, 1, 1), 1.0, True)])
        assert store.get(plain.id).landmarks is None
        with pytest.raises(ValueError, match="five"):
            store.add([NewFace(_vector(2), "/b", "b", (0, 0, 1, 1), 1.0, True, landmarks=FIVE[:4])])
        assert store.count() == 1


def test_a_version_1_postgres_gallery_is_migrated_and_keeps_its_rows(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database()
    with psycopg.connect(url, autocommit=True) as db:
        for statement in postgres_schema.SCHEMA_V1:
            db.execute(statement)
        db.execute("INSERT INTO meta VALUES ('model', 'm1'), ('embedding_dim', %s)", (str(DIM),))
        db.execute(
            "INSERT INTO faces(id, label, source, content_hash, box, score, face_found,"
            " metadata, vector, model, created) VALUES"
            " ('f0', 'ann', '/p/0.jpg', 'h0', '[1, 2, 3, 4]', 0.9, 1, '{}', %s, 'm1', 1000.0)",
            (_vector(0).tobytes(),),
        )
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False, store_url=url) as store:
        assert store._db.schema_version() == SCHEMA_VERSION
        assert store.get("f0").landmarks is None
        assert store.search(_vector(0), 1)[0][0].record.id == "f0"
        (added,) = store.add(
            [NewFace(_vector(5), "/p/5", "h5", (0, 0, 5, 5), 0.8, True, landmarks=FIVE)]
        )
        assert store.get(added.id).landmarks == FIVE
        assert store._db.changes_after(0, 10)[-1].id == added.id
