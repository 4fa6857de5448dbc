"""Damaged state on disk: a bad index file is rebuilt from SQLite; a bad database stops the
start with one clear line and is left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from reliability_testing import StartService, stored_state

from indexer.cli import main as indexer_main
from indexer.errors import StoreCorrupt
from indexer.store import GalleryStore
from service.main import create_app
from service.settings import ServiceSettings

INDEX, SIDECAR, DB = "index.faiss", "index.json", "gallery.sqlite3"


@dataclass
class History:
    """A store built through the service in steps; the index files of earlier steps kept."""

    data: Path
    settings: Callable[[Path], ServiceSettings]
    photos: dict[str, Path]
    """id -> photo, of the faces in the final store"""
    removed: str
    snapshots: dict[str, dict[str, bytes]]


@pytest.fixture(scope="module")
def history(
    tmp_path_factory: pytest.TempPathFactory,
    model_path: Path,
    yunet_model: Path,
    face_photos: list[Path],
) -> History:
    """Add 3 faces, add 3 more, delete one, add 2: 7 faces, index files kept at each step."""
    root = tmp_path_factory.mktemp("history")

    def settings(data: Path) -> ServiceSettings:
        return ServiceSettings(model=str(model_path), data_dir=data, detector="yunet",
                               detector_model=yunet_model, index_save_seconds=3600)  # fmt: skip

    photos: dict[str, Path] = {}
    snapshots: dict[str, dict[str, bytes]] = {}
    data = root / "data"
    with TestClient(create_app(settings(data))) as client:
        store = client.app.state.engine.store  # type: ignore[attr-defined]

        def add(batch: list[Path]) -> None:
            files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in batch]
            added = client.post("/gallery", files=files).json()["added"]
            photos.update({e["id"]: p for e, p in zip(added, batch, strict=True)})

        def snapshot(name: str) -> None:
            store.save_index()
            snapshots[name] = {f: (data / f).read_bytes() for f in (INDEX, SIDECAR)}

        add(face_photos[0:3])
        snapshot("3 faces")
        add(face_photos[10:13])
        snapshot("6 faces")
        removed = next(iter(photos))
        assert client.delete(f"/gallery/{removed}").status_code == 200
        del photos[removed]
        snapshot("5 faces, after the removal")
        add(face_photos[20:22])
    assert len(photos) == 7
    return History(data, settings, photos, removed, snapshots)


def garbage(size: int) -> bytes:
    return np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()


def damage_index(data: Path, how: str, history: History) -> None:
    index, sidecar = data / INDEX, data / SIDECAR
    if how == "index file deleted":
        index.unlink()
    elif how == "index file of random bytes":
        index.write_bytes(garbage(index.stat().st_size))
    elif how == "index file cut in half":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif how == "index file empty":
        index.write_bytes(b"")
    elif how == "index.json deleted":
        sidecar.unlink()
    elif how == "index.json not json":
        sidecar.write_text("{not json")
    elif how == "index.json claims fewer faces":
        note = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**note, "max_rowid": 2, "count": 2}))
    elif how == "index.json names another model":
        note = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**note, "model": "0123456789abcdef"}))
    else:  # an index saved at an earlier step, as a kill between saves leaves it
        for name, content in history.snapshots[how].items():
            (data / name).write_bytes(content)


DAMAGES = [
    "index file deleted",
    "index file of random bytes",
    "index file cut in half",
    "index file empty",
    "index.json deleted",
    "index.json not json",
    "index.json claims fewer faces",
    "index.json names another model",
    "3 faces",
    "6 faces",
    "5 faces, after the removal",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_or_stale_index_is_rebuilt_from_sqlite(
    how: str, history: History, tmp_path: Path
) -> None:
    """The store opens as the service opens it; its index then holds exactly SQLite's rows."""
    data = tmp_path / "data"
    shutil.copytree(history.data, data)
    damage_index(data, how, history)
    with GalleryStore(data) as store:
        assert store.count() == 7
        _, vectors = next(store.vectors())
        for matches in store.search(vectors, 100):  # each face's own vector
            assert matches[0].similarity > 0.999
            assert {m.record.id for m in matches} == set(history.photos)  # no ghost, none lost
    rows, index_ids, sidecar = stored_state(data)
    assert rows == index_ids and sidecar["count"] == 7


@pytest.mark.parametrize("how", ["index file of random bytes", "index file deleted"])
def test_the_service_starts_on_a_damaged_index_and_finds_every_face(
    how: str, history: History, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    shutil.copytree(history.data, data)
    damage_index(data, how, history)
    with caplog.at_level(logging.WARNING), TestClient(create_app(history.settings(data))) as client:
        assert client.get("/info").json()["gallery_size"] == 7
        for face_id, photo in history.photos.items():
            files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
            matches = client.post("/query", files=files, params={"k": 100}).json()
            matches = matches["faces"][0]["matches"]
            assert matches[0]["id"] == face_id and matches[0]["similarity"] > 0.99
            assert len(matches) == 7
    assert "rebuilding the search index" in caplog.text


# ----------------------------------------------------------------------------- the database
def damage_db(path: Path, how: str) -> None:
    content = path.read_bytes()
    page = 4096
    if how == "random bytes":
        damaged = garbage(len(content))
    elif how == "header zeroed":
        damaged = b"\x00" * 100 + content[100:]
    elif how == "cut in half":
        damaged = content[: len(content) // 2]
    elif how == "a middle page overwritten":
        middle = len(content) // page // 2 * page
        damaged = content[:middle] + b"\xee" * page + content[middle + page :]
    else:  # the last page overwritten
        damaged = content[:-page] + b"\xee" * page
    path.write_bytes(damaged)


DB_DAMAGES = [
    "random bytes",
    "header zeroed",
    "cut in half",
    "a middle page overwritten",
    "the last page overwritten",
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def damaged_db(history: History, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    def make(how: str) -> Path:
        data = tmp_path / "data"
        shutil.copytree(history.data, data)
        damage_db(data / DB, how)
        return data

    yield make


@pytest.mark.parametrize("how", DB_DAMAGES)
def test_a_damaged_database_is_refused_and_left_unchanged(
    how: str, damaged_db: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = damaged_db(how)
    before = digest(data / DB)
    with pytest.raises(StoreCorrupt, match="is damaged"):
        GalleryStore(data)
    assert indexer_main(["info", "--index", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "damaged" in err and "Traceback" not in err
    assert digest(data / DB) == before
    assert not (data / f"{DB}-wal").exists() or (data / f"{DB}-wal").stat().st_size == 0


@pytest.mark.parametrize("how", ["a middle page overwritten"])
def test_the_service_stops_with_one_line_on_a_damaged_database(
    how: str, damaged_db: Callable[[str], Path], start_service: StartService
) -> None:
    data = damaged_db(how)
    before = digest(data / DB)
    service = start_service(data, wait=False)
    assert service.wait_exit() == 2
    log = service.text()
    assert "Traceback" not in log, log
    last = log.strip().splitlines()[-1]
    assert last.startswith("facefind: error: the gallery database") and "damaged" in last, log
    assert digest(data / DB) == before
