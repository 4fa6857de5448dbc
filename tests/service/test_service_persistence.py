"""Nothing acknowledged is lost: across restarts, and across a kill -9 in the middle of adds."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from service_process import ServiceProcess
from service_testing import SettingsFactory, upload

from service.main import create_app


def test_faces_survive_a_restart(
    tmp_path: Path, start_service: Callable[..., ServiceProcess], faces: dict[str, list[Path]]
) -> None:
    data = tmp_path / "data"
    photos = faces["jerry_seinfeld"][:3]
    service = start_service(data)
    with httpx.Client(base_url=service.url, timeout=60) as http:
        body = http.post("/gallery", files=[upload(p) for p in photos], data={"label": "jerry"})
        ids = [e["id"] for e in body.json()["added"]]
        removed = ids.pop()
        http.delete(f"/gallery/{removed}").raise_for_status()
        http.patch(f"/gallery/{ids[0]}", json={"label": "Jerry"}).raise_for_status()
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught
    assert service.stop() in (0, -signal.SIGTERM), service.log.read_text()
    log = service.log.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log

    service = start_service(data)
    with httpx.Client(base_url=service.url, timeout=60) as http:
        assert http.get("/info").json()["gallery_size"] == 2
        assert http.get(f"/gallery/{ids[0]}").json()["label"] == "Jerry"
        assert http.get(f"/gallery/{removed}").status_code == 404
        for path, face_id in zip(photos, ids, strict=False):
            hit = http.post("/query", files=[upload(path, "image")], params={"k": 5}).json()
            matches = hit["faces"][0]["matches"]
            assert matches[0]["id"] == face_id and len(matches) == 2


def test_kill_9_during_concurrent_adds_loses_nothing_acknowledged(
    tmp_path: Path,
    start_service: Callable[..., ServiceProcess],
    shared_data: Path,
) -> None:
    data = tmp_path / "data"
    pool = sorted((shared_data / "lfw").glob("B*/*.jpg"))[:400]
    photos = iter(pool)
    take = threading.Lock()
    acknowledged: dict[str, Path] = {}
    failures: list[str] = []
    for round_ in range(2):
        service = start_service(data)
        stop = threading.Event()

        def client(service: ServiceProcess = service, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=service.url, timeout=30) as http:
                while not stop.is_set():
                    with take:
                        batch = list(itertools.islice(photos, 2))
                    if not batch:
                        return
                    try:
                        response = http.post("/gallery", files=[upload(p) for p in batch])
                    except httpx.TransportError:
                        return  # the server died mid-request: not acknowledged
                    if response.status_code != 200:
                        failures.append(response.text)
                        return
                    for entry in response.json()["added"]:
                        acknowledged[entry["id"]] = next(
                            p for p in batch if p.name == entry["source"]
                        )

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        target = len(acknowledged) + 12
        deadline = time.monotonic() + 120
        while len(acknowledged) < target and time.monotonic() < deadline and not failures:
            time.sleep(0.02)
        service.kill()
        stop.set()
        for t in threads:
            t.join(60)
        assert not failures, failures
        assert len(acknowledged) >= target, f"round {round_}: only {len(acknowledged)} adds"

    service = start_service(data)
    with httpx.Client(base_url=service.url, timeout=60) as http:
        listed = http.get("/gallery", params={"limit": 500}).json()
        stored = {e["id"] for e in listed["data"]}
        assert set(acknowledged) <= stored, set(acknowledged) - stored
        assert http.get("/info").json()["gallery_size"] == listed["count"] == len(stored)
        for face_id in list(acknowledged)[:: max(1, len(acknowledged) // 8)]:
            hit = http.post(
                "/query", files=[upload(acknowledged[face_id], "image")], params={"k": 3}
            )
            assert face_id in {m["id"] for m in hit.json()["faces"][0]["matches"]}
        # the index holds exactly the rows of SQLite: a search for everything finds every row
        everything = http.post(
            "/query", files=[upload(pool[0], "image")], params={"k": 100}
        ).json()["faces"][0]["matches"]
        ids = [m["id"] for m in everything]
        assert len(ids) == len(set(ids)) == min(100, len(stored))
        assert set(ids) <= stored


def test_the_index_file_is_saved_in_the_background(
    settings_factory: SettingsFactory, faces: dict[str, list[Path]]
) -> None:
    """SQLite has every face at once; the FAISS file follows within index_save_seconds."""
    settings = settings_factory(index_save_seconds=1)
    sidecar = settings.data_dir / "index.json"
    with TestClient(create_app(settings)) as client:
        client.post("/gallery", files=[upload(p) for p in faces["madonna"][:3]])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and json.loads(sidecar.read_text())["count"] != 3:
            time.sleep(0.2)
        assert json.loads(sidecar.read_text())["count"] == 3
        assert (settings.data_dir / "index.faiss").stat().st_size > 3 * 128 * 4
