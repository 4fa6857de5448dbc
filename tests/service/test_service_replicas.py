"""Several ``python -m service`` replicas and ``python -m indexer build`` on one gallery store.

What one process writes is searchable through every other within a second, on PostgreSQL
(two replicas, LISTEN/NOTIFY) and on SQLite (a service and the indexer on one machine). While
the database is down, requests get 503 and /ready fails; both recover by themselves.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from postgres_server import PostgresServer, postgres_server
from service_process import REPO, ServiceProcess, clean_env
from service_testing import upload

__all__ = ["postgres_server"]

VISIBLE_WITHIN_S = 1.0


@pytest.fixture
def replicas(
    tmp_path: Path, model_path: Path, yunet_model: Path
) -> Iterator[Callable[..., list[ServiceProcess]]]:
    """Start n services on one store (``url``: PostgreSQL; None: SQLite in one data dir)."""
    started: list[ServiceProcess] = []

    def start(n: int, url: str | None) -> list[ServiceProcess]:
        batch = []
        for _ in range(n):
            i = len(started)
            data = tmp_path / (f"cache-{i}" if url else "data")
            env = {"FACEFIND_STORE_URL": url} if url else {}
            service = ServiceProcess(data, model_path, yunet_model, tmp_path / f"s{i}.log", env)
            started.append(service)
            batch.append(service.start(wait=False))
        for service in batch:  # started together: they load their models side by side
            service.wait_ready()
        return batch

    yield start
    for service in started:
        service.kill()


def index_folder(
    gallery: Path, index: Path, url: str | None, model: Path, yunet: Path
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "indexer", "build", str(gallery), "--index", str(index),
           "--model", str(model), "--detector", "yunet", "--detector-model", str(yunet),
           "--workers", "1"]  # fmt: skip
    if url:
        cmd += ["--store-url", url]
    return subprocess.run(
        cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600
    )


def best_match(service: ServiceProcess, photo: Path) -> str | None:
    response = httpx.post(
        f"{service.url}/query", files=[upload(photo, "image")], params={"k": 1}, timeout=30
    )
    response.raise_for_status()
    matches = response.json()["faces"][0]["matches"]
    return matches[0]["id"] if matches and matches[0]["similarity"] > 0.99 else None


def seconds_until(condition: Callable[[], bool], limit: float = 10.0) -> float:
    """How long until ``condition`` holds; fails past ``limit``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit, f"not within {limit} s"
        time.sleep(0.02)
    return time.monotonic() - start


def visible_within(service: ServiceProcess, photo: Path, face_id: str | None) -> float:
    """Seconds until ``photo`` finds ``face_id`` (None: finds nothing) through ``service``,
    less the time of one query (the polling query itself is not the store's delay)."""
    start = time.monotonic()
    best_match(service, photo)
    one_query = time.monotonic() - start
    return max(0.0, seconds_until(lambda: best_match(service, photo) == face_id) - one_query)


def test_two_postgres_replicas_and_the_indexer_see_each_others_writes(
    postgres_server: PostgresServer,
    replicas: Callable[..., list[ServiceProcess]],
    faces: dict[str, list[Path]],
    gallery_dir: Path,
    tmp_path: Path,
    model_path: Path,
    yunet_model: Path,
) -> None:
    url = postgres_server.create_database()
    a, b = replicas(2, url)
    photo = faces["madonna"][0]
    added = httpx.post(
        f"{a.url}/gallery", files=[upload(photo)], data={"label": "Madonna"}, timeout=60
    ).json()["added"][0]["id"]
    assert visible_within(b, photo, added) < VISIBLE_WITHIN_S

    httpx.patch(f"{b.url}/gallery/{added}", json={"label": "M."}, timeout=30).raise_for_status()
    assert httpx.get(f"{a.url}/gallery/{added}", timeout=30).json()["label"] == "M."
    httpx.delete(f"{b.url}/gallery/{added}", timeout=30).raise_for_status()
    assert visible_within(a, photo, None) < VISIBLE_WITHIN_S

    built = index_folder(gallery_dir, tmp_path / "indexer-cache", url, model_path, yunet_model)
    assert built.returncode == 0, built.stderr
    other = faces["jerry_seinfeld"][1]
    for service in (a, b):  # the indexer finished before: visible at once, or nearly
        assert best_match(service, other) is not None
        total = httpx.get(f"{service.url}/gallery", params={"limit": 1}, timeout=30).json()
        assert total["count"] == sum(len(p) for p in faces.values())


def test_a_service_sees_an_indexer_build_on_sqlite_without_a_restart(
    replicas: Callable[..., list[ServiceProcess]],
    faces: dict[str, list[Path]],
    gallery_dir: Path,
    tmp_path: Path,
    model_path: Path,
    yunet_model: Path,
) -> None:
    (service,) = replicas(1, None)
    photo = faces["madonna"][2]
    assert best_match(service, photo) is None
    built = index_folder(gallery_dir, service.data_dir, None, model_path, yunet_model)
    assert built.returncode == 0, built.stderr
    assert visible_within(service, photo, best_match_id(service, photo)) < VISIBLE_WITHIN_S


def best_match_id(service: ServiceProcess, photo: Path) -> str:
    """The id the indexer gave ``photo``, read through the service's gallery listing."""
    listed = httpx.get(f"{service.url}/gallery", params={"limit": 500}, timeout=30).json()
    return next(e["id"] for e in listed["data"] if e["source"].endswith(photo.name))


def test_database_down_is_503_and_not_ready_then_recovers(
    postgres_server: PostgresServer,
    replicas: Callable[..., list[ServiceProcess]],
    faces: dict[str, list[Path]],
) -> None:
    url = postgres_server.create_database()
    (service,) = replicas(1, url)
    photo = faces["madonna"][0]
    httpx.post(f"{service.url}/gallery", files=[upload(photo)], timeout=60).raise_for_status()
    postgres_server.stop()
    try:
        seconds_until(lambda: httpx.get(f"{service.url}/ready").status_code == 503)
        ready = httpx.get(f"{service.url}/ready").json()
        assert "cannot be reached" in ready["detail"], ready
        response = httpx.post(f"{service.url}/query", files=[upload(photo, "image")], timeout=30)
        assert response.status_code == 503
        assert "gallery database" in response.json()["detail"]
        assert "try again" in response.json()["detail"]
    finally:
        postgres_server.start()
    seconds_until(lambda: httpx.get(f"{service.url}/ready").status_code == 200, limit=30)
    assert best_match(service, photo) is not None
    more = httpx.post(f"{service.url}/gallery", files=[upload(faces["madonna"][1])], timeout=60)
    assert more.status_code == 200, more.text


def test_kill_9_of_a_replica_mid_writes_loses_no_acknowledged_add(
    postgres_server: PostgresServer,
    replicas: Callable[..., list[ServiceProcess]],
    shared_data: Path,
) -> None:
    url = postgres_server.create_database()
    a, b = replicas(2, url)
    photos = iter(sorted((shared_data / "lfw").glob("C*/*.jpg"))[:200])
    acknowledged: dict[str, Path] = {}
    with httpx.Client(base_url=a.url, timeout=30) as http:
        killer = None
        for photo in photos:
            if len(acknowledged) == 8 and killer is None:  # mid-write: the next add is in flight
                killer = subprocess.Popen(["sh", "-c", f"sleep 0.05; kill -9 {a.pid}"])
            try:
                response = http.post("/gallery", files=[upload(photo)])
            except httpx.TransportError:
                break  # died mid-request: not acknowledged
            if response.status_code == 200:
                for entry in response.json()["added"]:
                    acknowledged[entry["id"]] = photo
    assert a.proc is not None and a.proc.wait(30) == -9
    assert len(acknowledged) >= 8
    listed = httpx.get(f"{b.url}/gallery", params={"limit": 500}, timeout=30).json()
    assert set(acknowledged) <= {e["id"] for e in listed["data"]}
    for face_id, photo in acknowledged.items():  # in replica B's index, too
        assert seconds_until(lambda p=photo, f=face_id: best_match(b, p) == f) < VISIBLE_WITHIN_S
