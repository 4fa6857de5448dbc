"""The load-or-rebuild decision: each reason, and which of them are worth a warning."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from indexer.index_file import INDEX_NAME, SIDECAR_NAME, IndexFile, Reason, Rebuild, Usable
from indexer.records import NewFace
from indexer.sqlite_db import SqliteGalleryDatabase
from indexer.store import DB_NAME, GalleryStore

DIM = 8


def _faces(n: int, start: int = 0) -> list[NewFace]:
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewFace(v, f"/p/{start + i}.jpg", f"h{start + i}", (0, 0, 4, 4), 0.9, True)
        for i, v in enumerate(vectors)
    ]


def _check(folder: Path, model: str = "m1") -> Usable | Rebuild:
    db = SqliteGalleryDatabase(folder / DB_NAME)
    try:
        return IndexFile(folder, use_gpu=False).check(db, model, DIM)
    finally:
        db.close()


def _gallery(folder: Path, n: int = 4) -> list[str]:
    with GalleryStore(folder, "m1", DIM, use_gpu=False) as store:
        return [r.id for r in store.add(_faces(n))]


def _reason(verdict: Usable | Rebuild) -> Reason | None:
    return verdict.reason if isinstance(verdict, Rebuild) else None


def test_a_new_gallery_is_created_quietly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _reason(_check(tmp_path)) is Reason.NEW_GALLERY
    with caplog.at_level(logging.INFO):
        GalleryStore(tmp_path, "m1", DIM, use_gpu=False).close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (tmp_path / INDEX_NAME).is_file() and (tmp_path / SIDECAR_NAME).is_file()
    assert isinstance(_check(tmp_path), Usable)


def test_a_saved_index_is_used_and_caught_up(tmp_path: Path) -> None:
    store = GalleryStore(tmp_path, "m1", DIM, use_gpu=False)
    store.add(_faces(3))
    store.save_index()
    store.add(_faces(2, start=10))
    store._db.close()  # a kill: the last two rows are not in the saved index
    verdict = _check(tmp_path)
    assert isinstance(verdict, Usable) and verdict.index.ntotal == 3
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as again:
        assert again._pending == 2 and again._index is not None and again._index.ntotal == 5


def _delete_index(folder: Path) -> None:
    (folder / INDEX_NAME).unlink()


def _delete_note(folder: Path) -> None:
    (folder / SIDECAR_NAME).unlink()


def _garble_index(folder: Path) -> None:
    (folder / INDEX_NAME).write_bytes(b"not faiss" * 20)


def _edit_note(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        note = json.loads((folder / SIDECAR_NAME).read_text())
        (folder / SIDECAR_NAME).write_text(json.dumps({**note, **changes}))

    return edit


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_delete_index, Reason.NO_INDEX),
        (_delete_note, Reason.NO_NOTE),
        (_garble_index, Reason.UNREADABLE),
        (_edit_note(model="m0"), Reason.OTHER_MODEL),
        (_edit_note(removals="7"), Reason.BEFORE_REMOVAL),
        (_edit_note(max_rowid=1), Reason.MISMATCH),
        (_edit_note(max_rowid="many"), Reason.NO_NOTE),
    ],
)
def test_each_damage_has_its_reason_and_a_warning(
    tmp_path: Path, damage: Callable[[Path], None], reason: Reason, caplog: pytest.LogCaptureFixture
) -> None:
    ids = _gallery(tmp_path)
    damage(tmp_path)
    assert _reason(_check(tmp_path)) is reason and not reason.expected
    with caplog.at_level(logging.WARNING), GalleryStore(tmp_path, "m1", DIM) as store:
        found = store.search(np.stack([f.vector for f in _faces(4)]), 10)
        assert all({m.record.id for m in hits} == set(ids) for hits in found)
    assert f"rebuilding the search index of {tmp_path} from the database: " in caplog.text
    assert reason.value in caplog.text
    assert isinstance(_check(tmp_path), Usable)


def test_an_index_older_than_a_removal_is_rebuilt(tmp_path: Path) -> None:
    ids = _gallery(tmp_path)
    saved = {name: (tmp_path / name).read_bytes() for name in (INDEX_NAME, SIDECAR_NAME)}
    with GalleryStore(tmp_path, "m1", DIM, use_gpu=False) as store:
        store.remove(ids[:1])
    for name, content in saved.items():
        (tmp_path / name).write_bytes(content)
    assert _reason(_check(tmp_path)) is Reason.BEFORE_REMOVAL
