"""Several replicas on one PostgreSQL gallery: what it costs and what it buys (docs/scaling.md).

    python -m benchmarks.scaling [--adds 200] [--visible 20] [--seconds 20] [--replicas 3]

Measures, on a PostgreSQL server it starts itself (initdb in a temporary folder, fsync on, as
tests/postgres_server.py does for the tests) and real ``python -m service`` processes:

- per-add cost: one face per transaction through ``GalleryStore.add``, SQLite vs PostgreSQL;
- follow delay: a face added through one store, found in a second one's index (its
  ChangeFollower: NOTIFY on PostgreSQL, polling every 0.25 s on SQLite), in-process;
- add-to-visible: a face enrolled through one replica, found by ``POST /query`` on another;
- query throughput over HTTP with 1, 2 and 3 replicas behind a round-robin client.

Writes benchmarks/results/scaling.json. Needs PostgreSQL's binaries (apt-get install postgresql).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.common import (
    DATA,
    REPO,
    RESULTS,
    YUNET,
    new_results,
    percentiles,
    remove_scratch,
    scratch_dir,
    speed_model,
    write_results,
)
from indexer.change_log import ChangeFollower
from indexer.records import NewFace
from indexer.store import GalleryStore

sys.path.insert(0, str(REPO / "tests"))  # the test suite's server and service helpers
from postgres_server import PostgresServer, find_binaries
from service_process import ServiceProcess

DIM = 128


def per_add_ms(url: str | None, adds: int) -> dict[str, float]:
    """One face (vector and a 4 KB crop) per add, each its own durable transaction."""
    rng = np.random.default_rng(0)
    times = []
    with GalleryStore(scratch_dir("add"), "bench", DIM, store_url=url, use_gpu=False) as store:
        for i in range(adds):
            vector = rng.normal(size=DIM).astype(np.float32)
            face = NewFace(vector, f"/p/{i}.jpg", f"h{i}", (0, 0, 9, 9), 1.0, True,
                           crop_jpeg=rng.bytes(4096))  # fmt: skip
            start = time.perf_counter()
            store.add([face])
            times.append((time.perf_counter() - start) * 1000)
    return percentiles(times)


def follower_ms(url: str | None, faces: int) -> dict[str, float]:
    """Add through one store, poll a second one (its own ChangeFollower) until it finds the
    face: the follow delay alone, without HTTP or embedding."""
    rng = np.random.default_rng(1)
    times = []
    one = GalleryStore(scratch_dir("one"), "bench", DIM, store_url=url, use_gpu=False)
    other_dir = scratch_dir("two") if url else one.directory
    two = GalleryStore(other_dir, "bench", DIM, store_url=url, use_gpu=False)
    follower = ChangeFollower(two).start()
    try:
        for i in range(faces):
            time.sleep(rng.uniform(0, 0.3))  # out of step with the follower's polling
            vector = rng.normal(size=DIM).astype(np.float32)
            (record,) = one.add([NewFace(vector, f"/f/{i}", f"f{i}", (0, 0, 9, 9), 1.0, True)])
            start = time.perf_counter()
            while not (hits := two.search(vector, 1)[0]) or hits[0].record.id != record.id:
                time.sleep(0.001)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        follower.stop()
        two.close()
        one.close()
    return percentiles(times)


def post_photo(http: httpx.Client, base: str, photo: Path) -> str:
    response = http.post(f"{base}/gallery", files=[("images", (photo.name, photo.read_bytes()))])
    response.raise_for_status()
    return response.json()["added"][0]["id"]


def query(http: httpx.Client, base: str, photo: Path) -> list[str]:
    files = [("image", (photo.name, photo.read_bytes()))]
    response = http.post(f"{base}/query", files=files, params={"k": 1})
    response.raise_for_status()
    faces = response.json()["faces"]
    return [m["id"] for m in faces[0]["matches"]] if faces else []


def add_to_visible(replicas: list[ServiceProcess], photos: list[Path]) -> dict[str, Any]:
    """Enrol through replica i, poll replica i+1 with the same photo until it finds it."""
    seen, one_query = [], []
    with httpx.Client(timeout=60) as http:
        for i, photo in enumerate(photos):
            writer, reader = replicas[i % len(replicas)], replicas[(i + 1) % len(replicas)]
            face_id = post_photo(http, writer.url, photo)
            acked = time.perf_counter()
            while True:
                start = time.perf_counter()
                found = face_id in query(http, reader.url, photo)
                if found:
                    seen.append((time.perf_counter() - acked) * 1000)
                    one_query.append((time.perf_counter() - start) * 1000)
                    break
    return {
        "raw": percentiles(seen),
        "one_query": percentiles(one_query),
        "note": "raw: from the add's response to the first query response that finds the face"
        " (includes that query); one_query: that last query alone",
    }


def throughput(replicas: list[ServiceProcess], photos: list[Path], seconds: float) -> float:
    """Queries/s from 4 client threads, round-robin over ``replicas``."""
    targets = itertools.cycle(r.url for r in replicas)
    pick = threading.Lock()
    done = [0]
    end = time.monotonic() + seconds

    def client(offset: int) -> None:
        with httpx.Client(timeout=120) as http:
            for photo in itertools.islice(itertools.cycle(photos), offset, None):
                if time.monotonic() >= end:
                    return
                with pick:
                    base = next(targets)
                query(http, base, photo)
                with pick:
                    done[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=200)
    parser.add_argument("--visible", type=int, default=20, help="faces timed add-to-visible")
    parser.add_argument("--seconds", type=float, default=20.0, help="per throughput run")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    args = parser.parse_args()
    bin_dir = find_binaries()
    if bin_dir is None:
        print("PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 2
    results = new_results("scaling", quick=False, note="shared 2-core machine, see docs")
    server = PostgresServer(bin_dir, durable=True).start()
    replicas: list[ServiceProcess] = []
    try:
        results["per_add_ms"] = {
            "sqlite": per_add_ms(None, args.adds),
            "postgres": per_add_ms(server.create_database(), args.adds),
        }
        print("per add:", results["per_add_ms"], file=sys.stderr)
        results["follow_ms"] = {
            "sqlite": follower_ms(None, args.visible * 5),
            "postgres": follower_ms(server.create_database(), args.visible * 5),
        }
        print("follow:", results["follow_ms"], file=sys.stderr)
        url = server.create_database()
        model, _ = speed_model(None)
        work = scratch_dir("replicas")
        for i in range(args.replicas):
            env = {"FACEFIND_STORE_URL": url, "FACEFIND_COMPILE": "false"}
            replicas.append(ServiceProcess(work / f"cache{i}", Path(model), YUNET,
                                           work / f"r{i}.log", env).start(wait=False))  # fmt: skip
        for replica in replicas:
            replica.wait_ready(600)
        photos = sorted((DATA / "lfw").glob("D*/*.jpg"))
        enrolled, fresh = photos[:40], photos[40 : 40 + args.visible]
        with httpx.Client(timeout=120) as http:
            for photo in enrolled:
                post_photo(http, replicas[0].url, photo)
        results["add_to_visible_ms"] = add_to_visible(replicas, fresh)
        print("add to visible:", results["add_to_visible_ms"], file=sys.stderr)
        results["queries_per_s"] = {
            str(n): throughput(replicas[:n], enrolled, args.seconds)
            for n in range(1, args.replicas + 1)
        }
        print("queries/s:", results["queries_per_s"], file=sys.stderr)
    finally:
        for replica in replicas:
            replica.kill()
        server.remove()
        remove_scratch()
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
