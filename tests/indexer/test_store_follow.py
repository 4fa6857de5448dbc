"""Two stores on one database: each sees what the other writes once it syncs, or by itself
within a second when a ChangeFollower runs (the service's replicas, the indexer)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from postgres_server import PostgresServer

from indexer.change_log import ChangeFollower
from indexer.errors import StoreCorrupt
from indexer.records import NewFace
from indexer.store import GalleryStore

DIM = 16


def _face(i: int, label: str = "a") -> NewFace:
    v = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    return NewFace(v / np.linalg.norm(v), f"/p/{i}.jpg", f"h{i}", (1, 2, 3, 4), 0.9, True, label)


def _pair(tmp_path: Path, url: str | None) -> tuple[GalleryStore, GalleryStore]:
    """Two stores on one database; on PostgreSQL each with a cache directory of its own."""
    first = GalleryStore(tmp_path / "a" if url else tmp_path, "m1", DIM, store_url=url)
    return first, GalleryStore(tmp_path / "b" if url else tmp_path, "m1", DIM, store_url=url)


def _found(store: GalleryStore, i: int) -> str | None:
    hits = store.search(_face(i).vector, 1)[0]
    return hits[0].record.id if hits and hits[0].similarity > 0.999 else None


def test_sync_applies_adds_updates_and_removals_of_another_store(
    tmp_path: Path, store_url: str | None
) -> None:
    one, two = _pair(tmp_path, store_url)
    with one, two:
        added = one.add([_face(i) for i in range(5)])
        assert _found(two, 3) is None, "not searchable before the sync"
        assert two.sync() == 5 and _found(two, 3) == added[3].id
        one.update(added[3].id, label="renamed")
        one.remove([added[1].id])
        two.add([_face(9)])  # its own write syncs what came before it, too
        assert _found(two, 1) is None and _found(two, 9) is not None
        assert two.search(_face(3).vector, 1)[0][0].record.label == "renamed"
        assert two.sync() == 0 and one.sync() == 1  # nothing twice; one has face 9 now
        assert _found(one, 9) is not None and two.count() == one.count() == 5


def test_a_follower_applies_changes_within_a_second(tmp_path: Path, store_url: str | None) -> None:
    one, two = _pair(tmp_path, store_url)
    follower = ChangeFollower(two).start()
    try:
        with one, two:
            for i in range(3):
                (record,) = one.add([_face(i)])
                start = time.monotonic()
                while _found(two, i) != record.id:
                    assert time.monotonic() - start < 1.0, "not visible within 1 s"
                    time.sleep(0.02)
            one.remove_label("a")
            start = time.monotonic()
            while _found(two, 0) is not None:
                assert time.monotonic() - start < 1.0, "removal not applied within 1 s"
                time.sleep(0.02)
            assert follower.healthy
    finally:
        follower.stop()


def test_a_restarted_store_catches_up_from_a_saved_index(
    tmp_path: Path, store_url: str | None
) -> None:
    one, two = _pair(tmp_path, store_url)
    with one:
        first = one.add([_face(i) for i in range(4)])
        with two:
            two.sync()
        one.remove([first[0].id])
        one.add([_face(7)])
    with _pair(tmp_path, store_url)[1] as again:  # its saved index predates both changes
        assert _found(again, 0) is None and _found(again, 7) is not None
        assert again.count() == 4


def test_an_unknown_store_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown store URL"):
        GalleryStore(tmp_path, "m1", DIM, store_url="mysql://x/y")


def test_a_postgres_gallery_from_a_newer_facefind_is_refused(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """SQLite's counterpart is in tests/indexer/test_store_schema.py."""
    store_url = postgres_server.create_database()
    GalleryStore(tmp_path, "m1", DIM, store_url=store_url).close()
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreCorrupt, match="upgrade facefind"):
        GalleryStore(tmp_path, "m1", DIM, store_url=store_url)
