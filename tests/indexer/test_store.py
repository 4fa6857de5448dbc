from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest

from indexer.errors import Conflict, ModelMismatch, NotFound, StoreCorrupt
from indexer.records import NewFace
from indexer.store import DB_NAME, INDEX_NAME, GalleryStore, index_cache

DIM = 16


def _face(i: int, label: str = "a", **kw: object) -> NewFace:
    rng = np.random.default_rng(i)
    v = rng.normal(size=DIM).astype(np.float32)
    return NewFace(
        v / np.linalg.norm(v),
        f"/photos/{i}.jpg",
        f"hash{i}",
        (1, 2, 3, 4),
        0.9,
        True,
        label=label,
        **kw,
    )


def _open(path: Path, url: str | None, model: str = "m1") -> GalleryStore:
    """SQLite in ``path``, or the PostgreSQL database at ``url`` with ``path`` as its cache."""
    return GalleryStore(path, model, DIM, store_url=url)


def test_add_search_update_remove(tmp_path: Path, store_url: str | None) -> None:
    with _open(tmp_path, store_url) as store:
        added = store.add([_face(i, "a" if i < 5 else "b") for i in range(10)])
        (best, *_), *_ = store.search(_face(3).vector, 3)
        assert best.record.id == added[3].id and best.similarity == pytest.approx(1.0, abs=1e-5)
        assert store.count() == 10 and store.count("b") == 5
        updated = store.update(added[0].id, label="c", metadata={"camera": "x"})
        assert updated.label == "c" and updated.metadata == {"camera": "x"}
        assert store.remove([added[1].id]) == 1
        assert store.remove_label("b") == 5
        assert store.count() == 4
        assert all(m.record.id != added[1].id for m in store.search(_face(1).vector, 10)[0])
        with pytest.raises(NotFound):
            store.get(added[1].id)


def test_caller_chosen_ids_and_crops(tmp_path: Path, store_url: str | None) -> None:
    with _open(tmp_path, store_url) as store:
        store.add([_face(1, id="alice-1", crop_jpeg=b"\xff\xd8jpeg")])
        assert store.get("alice-1").label == "a" and store.crop("alice-1") == b"\xff\xd8jpeg"
        with pytest.raises(Conflict, match="alice-1"):
            store.add([_face(2), _face(3, id="alice-1")])
        assert store.count() == 1, "a failed add must leave nothing behind"
        records, total = store.list(offset=0, limit=10)
        assert total == 1 and records[0].id == "alice-1"


def test_reopen_without_a_saved_index_catches_up(tmp_path: Path, store_url: str | None) -> None:
    store = _open(tmp_path, store_url)
    store.add([_face(i) for i in range(5)])
    store.save_index()
    store.add([_face(i) for i in range(5, 8)])
    # Simulate a crash: the connection is dropped without saving the index again.
    store._db.close()
    with _open(tmp_path, store_url) as again:
        assert again.count() == 8
        assert again.search(_face(7).vector, 1)[0][0].record.source == "/photos/7.jpg"


@pytest.mark.parametrize("damage", ["delete", "corrupt", "stale"])
def test_missing_corrupt_or_stale_index_is_rebuilt(
    tmp_path: Path, store_url: str | None, damage: str
) -> None:
    with _open(tmp_path, store_url) as store:
        added = store.add([_face(i) for i in range(6)])
    index_file = index_cache(tmp_path, store_url) / INDEX_NAME
    if damage == "delete":
        index_file.unlink()
    elif damage == "corrupt":
        index_file.write_bytes(b"garbage" * 10)
    else:
        saved = index_file.read_bytes()
        with _open(tmp_path, store_url) as store:
            store.remove([added[0].id])
        index_file.write_bytes(saved)  # an index from before the removal
    with _open(tmp_path, store_url) as store:
        hits = store.search(_face(0).vector, 10)[0]
        ids = {m.record.id for m in hits}
        expected = {r.id for r in added} - ({added[0].id} if damage == "stale" else set())
        assert ids == expected


def test_another_model_is_refused(tmp_path: Path, store_url: str | None) -> None:
    with _open(tmp_path, store_url) as store:
        store.add([_face(1)])
    with pytest.raises(ModelMismatch, match="built with model m1"):
        _open(tmp_path, store_url, model="m2")
    with GalleryStore(tmp_path, store_url=store_url) as store:  # no model: read-only use
        assert store.model == "m1" and store.count() == 1


def test_wrong_vector_size_is_refused(tmp_path: Path, store_url: str | None) -> None:
    with _open(tmp_path, store_url) as store, pytest.raises(ModelMismatch):
        store.add([NewFace(np.ones(DIM + 1, np.float32), "x", "h", (0, 0, 1, 1), 1.0, True)])


def test_corrupt_database_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    """SQLite only: a PostgreSQL server checks its own pages."""
    with _open(tmp_path, None) as store:
        store.add([_face(1)])
    db = tmp_path / DB_NAME
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    with pytest.raises(StoreCorrupt, match="damaged"):
        _open(tmp_path, None)
    assert db.read_bytes() == before


def test_adds_are_durable_without_close(tmp_path: Path, store_url: str | None) -> None:
    """What add() returned is in the database for any other process to see."""
    store = _open(tmp_path, store_url)
    added = store.add([_face(i) for i in range(3)])
    if store_url is not None:
        with psycopg.connect(store_url) as other:
            rows = other.execute("SELECT id FROM faces").fetchall()
    else:
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in (DB_NAME, f"{DB_NAME}-wal"):
            if (tmp_path / name).exists():
                shutil.copy(tmp_path / name, copy / name)
        rows = sqlite3.connect(copy / DB_NAME).execute("SELECT id FROM faces").fetchall()
    assert {r[0] for r in rows} == {r.id for r in added}
    store.close()


def test_gallery_switches_index_type_when_it_grows(tmp_path: Path, store_url: str | None) -> None:
    store = GalleryStore(tmp_path, "m1", DIM, index_factory="HNSW8,Flat", store_url=store_url)
    with store:
        store.add([_face(i) for i in range(20)])
        assert store.index_type == "HNSW8,Flat"
        store.remove([store.list(0, 1)[0][0].id])  # HNSW cannot remove: rebuilt instead
        assert store.count() == 19 and len(store.search(_face(5).vector, 50)[0]) == 19
