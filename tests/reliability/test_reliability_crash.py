"""Crash safety: kill -9 at random moments while clients add faces; nothing acknowledged is lost.

Each round: several clients add new photos (some with ids of their own, some sent again, which
must come back as the same entry), the service is killed with SIGKILL at a random moment
after the round's first acknowledged add, and restarted. Then every add ever acknowledged
must be listed, searchable with its own photo (similarity ~1) and counted by ``/info``; the
store left by the kill, opened as the service opens it, must hold in FAISS exactly the rows
of SQLite. After the last round a graceful stop must leave the index file equal to SQLite.

``RELIABILITY_CRASH_ROUNDS`` (default 2) sets the number of rounds, ``RELIABILITY_SEED`` the
random kill moments and photos (printed, so a failure can be replayed).
"""

from __future__ import annotations

import itertools
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import httpx
from reliability_testing import (
    ServiceProcess,
    StartService,
    assert_clean_log,
    env_int,
    list_ids,
    report,
    server_errors,
    stored_state,
)

from indexer.store import GalleryStore

ROUNDS = env_int("CRASH_ROUNDS", 2)
CLIENTS = env_int("CRASH_CLIENTS", 4)
MAX_KILL_DELAY_S = 1.5
SERVICE_ENV = {
    # Save the index file often, so that kills also land in the middle of saves.
    "FACEFIND_INDEX_SAVE_SECONDS": "1",
    "FACEFIND_INDEX_SAVE_AFTER": "8",
}


@dataclass
class Ledger:
    """What the clients were told: id -> photo, for every acknowledged add."""

    pool: Iterator[Path]
    acked: dict[str, Path] = field(default_factory=dict)
    by_photo: dict[Path, str] = field(default_factory=dict)
    unacknowledged: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def take(self, n: int) -> list[Path]:
        with self.lock:
            return list(itertools.islice(self.pool, n))


def add_until_killed(
    url: str, ledger: Ledger, rng: random.Random, stop: threading.Event, round_: int
) -> None:
    """One client: adds until the server dies under it or ``stop`` is set."""
    with httpx.Client(base_url=url, timeout=60) as http:
        while not stop.is_set():
            roll = rng.random()
            data: dict[str, str] = {}
            with ledger.lock:
                known = list(ledger.by_photo)
            if roll < 0.1 and known:
                batch = [rng.choice(known)]  # sent again: must be the same entry
            else:
                batch = ledger.take(1 if roll < 0.3 else rng.randint(1, 3))
                if not batch:
                    return
                if roll < 0.3:
                    data["id"] = f"r{round_}-{next(ledger.ids)}"
            files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in batch]
            try:
                answer = http.post("/gallery", files=files, data=data,
                                   params={"if_no_face": "whole_image"})  # fmt: skip
            except httpx.TransportError:
                ledger.unacknowledged.extend(batch)  # died mid-request: nothing was promised
                return
            if answer.status_code != 200 or len(answer.json()["added"]) != len(batch):
                ledger.failures.append(f"{answer.status_code}: {answer.text[:300]}")
                return
            with ledger.lock:
                for photo, entry in zip(batch, answer.json()["added"], strict=True):
                    known_id = ledger.by_photo.get(photo)
                    if known_id is not None and entry["id"] != known_id:
                        ledger.failures.append(f"{photo.name} came back as a new entry")
                    if "id" in data and entry["id"] != data["id"]:
                        ledger.failures.append(f"{photo.name} did not get id {data['id']}")
                    ledger.acked[entry["id"]] = photo
                    ledger.by_photo[photo] = entry["id"]


def check_recovery_offline(data: Path, scratch: Path) -> int:
    """Open a copy of the killed store as the service would; FAISS must equal SQLite.

    Returns how many temp files an interrupted index save left behind.
    """
    index_file = data / "index.faiss"
    if index_file.exists():  # saves are atomic: never a torn file, whenever the kill came
        faiss.read_index(str(index_file))
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(data, scratch)
    with GalleryStore(scratch):
        pass
    rows, ids, sidecar = stored_state(scratch)
    assert rows == ids, f"SQLite-only rows {rows - ids}, index-only ids {ids - rows}"
    assert sidecar["count"] == len(rows)
    return len(list(data.glob(".index.faiss.*.tmp")))


def check_served(
    http: httpx.Client, ledger: Ledger, new: set[str], rng: random.Random
) -> dict[str, dict[str, object]]:
    """Every acknowledged add is listed and counted; the new ones and a sample of the old
    ones are found by a search with their own photo."""
    entries = list_ids(http)
    missing = set(ledger.acked) - set(entries)
    assert not missing, f"acknowledged adds lost: {sorted(missing)}"
    assert http.get("/info").json()["gallery_size"] == len(entries)
    old = sorted(set(ledger.acked) - new)
    sample = sorted(new) + rng.sample(old, min(8, len(old)))
    for face_id in sample:
        assert http.get(f"/gallery/{face_id}").status_code == 200
        photo = ledger.acked[face_id]
        files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
        found = http.post("/query", files=files, params={"k": 5}).json()["faces"][0]["matches"]
        similar = {m["id"]: m["similarity"] for m in found}
        assert similar.get(face_id, 0.0) >= 0.99, (face_id, photo.name, found[:2])
    return entries


def test_kill_9_at_random_moments_loses_no_acknowledged_add(
    tmp_path: Path, start_service: StartService, lfw_photos: list[Path]
) -> None:
    seed = env_int("SEED", random.SystemRandom().randrange(1_000_000))
    print(f"\n[reliability] crash rounds: {ROUNDS}, seed {seed}")
    rng = random.Random(seed)
    data = tmp_path / "data"
    ledger = Ledger(iter(rng.sample(lfw_photos, len(lfw_photos))))
    service: ServiceProcess = start_service(data, **SERVICE_ENV)
    delays, restarts, leftovers, sizes, committed_anyway = [], [], 0, [], 0
    cut = 0
    for round_ in range(ROUNDS):
        before = set(ledger.acked)
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=add_until_killed,
                args=(service.url, ledger, random.Random(rng.random()), stop, round_),
            )
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 120
        while len(ledger.acked) == len(before) and time.monotonic() < deadline:
            assert not ledger.failures, ledger.failures
            time.sleep(0.01)
        delays.append(round(rng.uniform(0.0, MAX_KILL_DELAY_S), 3))
        time.sleep(delays[-1])
        service.kill()
        stop.set()
        for client in clients:
            client.join(120)
        assert not ledger.failures, ledger.failures
        assert len(ledger.acked) > len(before), f"round {round_}: no add was acknowledged"
        leftovers += check_recovery_offline(data, tmp_path / "scratch")

        started = time.monotonic()
        service = start_service(data, **SERVICE_ENV)
        restarts.append(round(time.monotonic() - started, 2))
        with httpx.Client(base_url=service.url, timeout=120) as http:
            entries = check_served(http, ledger, set(ledger.acked) - before, rng)
            assert server_errors(http) == {}
        sizes.append(len(entries))
        sources = {e["source"] for e in entries.values()}
        committed_anyway += sum(p.name in sources for p in ledger.unacknowledged[cut:])
        cut = len(ledger.unacknowledged)

    assert service.stop() in (0, -signal.SIGTERM), service.text()[-3000:]
    assert_clean_log(service.text())
    rows, ids, sidecar = stored_state(data)
    assert rows == ids and sidecar["count"] == len(rows) == sizes[-1]
    report(
        "crash",
        {
            "rounds": ROUNDS,
            "seed": seed,
            "clients": CLIENTS,
            "acknowledged_adds": len(ledger.acked),
            "acknowledged_lost": 0,
            "photos_in_requests_cut_by_kills": len(ledger.unacknowledged),
            "of_which_committed_before_the_kill": committed_anyway,
            "kill_delay_after_first_ack_s": delays,
            "restart_to_ready_s": restarts,
            "gallery_sizes": sizes,
            "index_temp_files_left_by_kills": leftovers,
        },
    )
