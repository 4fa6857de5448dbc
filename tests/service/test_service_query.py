"""``POST /query`` and ``POST /query/batch`` over one enrolled gallery (read-only tests)."""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_testing import LiveServer, SettingsFactory, make_settings, upload

from service.main import create_app


@pytest.fixture(scope="module")
def enrolled(
    tmp_path_factory: pytest.TempPathFactory,
    model_path: Path,
    yunet_model: Path,
    faces: dict[str, list[Path]],
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A client over a gallery of 3 photos per person; path name -> gallery id."""
    settings = make_settings(tmp_path_factory.mktemp("query") / "data", model_path, yunet_model)
    with TestClient(create_app(settings)) as client:
        ids = {}
        for person, paths in faces.items():
            body = client.post(
                "/gallery", files=[upload(p) for p in paths[:3]], data={"label": person}
            )
            ids.update({e["source"]: e["id"] for e in body.json()["added"]})
        assert len(ids) == 15
        yield client, ids


def test_query_reports_faces_matches_timings_and_model(
    enrolled: tuple[TestClient, dict[str, str]], faces: dict[str, list[Path]]
) -> None:
    client, ids = enrolled
    photo = faces["elton_john"][1]
    response = client.post("/query", files=[upload(photo, "image")], params={"k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file"] == photo.name and body["face_found"] is True
    assert (body["width"], body["height"]) == (150, 150)
    assert body["model"] == client.get("/info").json()["model"]["fingerprint"]
    assert set(body["timings"]) == {"decode_ms", "detect_ms", "embed_ms", "search_ms", "total_ms"}
    assert all(v >= 0 for v in body["timings"].values())
    (face,) = body["faces"]
    x, y, w, h = face["box"]
    assert face["detected"] and 0 < face["score"] <= 1 and x + w <= 150 and y + h <= 150
    matches = face["matches"]
    assert len(matches) == 4
    assert [m["similarity"] for m in matches] == sorted(
        (m["similarity"] for m in matches), reverse=True
    )
    assert matches[0]["id"] == ids[photo.name] and matches[0]["label"] == "elton_john"
    assert matches[0]["similarity"] == pytest.approx(1.0, abs=0.01)
    assert set(matches[0]) == {
        "id",
        "label",
        "similarity",
        "same_person",
        "source",
        "box",
        "landmarks",
        "metadata",
        "image_url",
    }
    assert matches[0]["same_person"] is None  # the test model is not calibrated


def test_min_similarity_turns_a_stranger_into_an_unknown_person(
    enrolled: tuple[TestClient, dict[str, str]], faces: dict[str, list[Path]]
) -> None:
    client, ids = enrolled
    stranger, known = faces["madonna"][-1], faces["madonna"][0]
    found = client.post("/query", files=[upload(stranger, "image")], params={"k": 3}).json()
    best = found["faces"][0]["matches"][0]["similarity"]
    threshold = min(best + 1e-4, 1.0)
    strict = {"k": 3, "min_similarity": threshold}
    unknown = client.post("/query", files=[upload(stranger, "image")], params=strict).json()
    assert unknown["faces"][0]["matches"] == []
    assert unknown["faces"][0]["detected"] is True
    hit = client.post("/query", files=[upload(known, "image")], params={"min_similarity": 0.999})
    assert [m["id"] for m in hit.json()["faces"][0]["matches"]][:1] == [ids[known.name]]


def test_without_a_face_the_whole_image_is_searched(
    enrolled: tuple[TestClient, dict[str, str]], blank_png: bytes
) -> None:
    client, _ = enrolled
    files = {"image": ("sky.png", blank_png, "image/png")}
    body = client.post("/query", files=files, params={"k": 2}).json()
    assert body["face_found"] is False
    (face,) = body["faces"]
    assert face["detected"] is False and face["box"] == [0, 0, 160, 120]
    assert len(face["matches"]) == 2


def test_every_face_of_a_group_photo_is_searched(
    enrolled: tuple[TestClient, dict[str, str]], group_photo: Path
) -> None:
    client, _ = enrolled
    body = client.post(
        "/query", files=[upload(group_photo, "image")], params={"faces": "all", "k": 2}
    )
    found = body.json()["faces"]
    assert len(found) >= 2 and all(len(f["matches"]) == 2 for f in found)
    largest = client.post("/query", files=[upload(group_photo, "image")]).json()["faces"]
    assert len(largest) == 1


def test_batch_query_answers_each_image_and_rejects_bad_ones(
    enrolled: tuple[TestClient, dict[str, str]], faces: dict[str, list[Path]]
) -> None:
    client, ids = enrolled
    photos = [faces["ben_afflek"][0], faces["jerry_seinfeld"][2]]
    files = [
        upload(photos[0]),
        ("images", ("junk.jpg", b"\x00" * 64, "image/jpeg")),
        upload(photos[1]),
    ]
    body = client.post("/query/batch", files=files, params={"k": 1}).json()
    assert [r["file"] for r in body["results"]] == [p.name for p in photos]
    assert [r["faces"][0]["matches"][0]["id"] for r in body["results"]] == [
        ids[p.name] for p in photos
    ]
    assert body["rejected"] == [
        {"file": "junk.jpg", "detail": body["rejected"][0]["detail"], "status": 415}
    ]


def test_an_empty_gallery_gives_no_matches(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    body = client.post("/query", files=[upload(faces["madonna"][0], "image")]).json()
    assert body["faces"][0]["matches"] == []


def test_concurrent_queries_on_a_real_server_share_embedder_batches(
    settings_factory: SettingsFactory, faces: dict[str, list[Path]]
) -> None:
    """With a generous batching window, queries that arrive together are embedded together."""
    photos = [paths[0] for paths in faces.values()]
    with (
        LiveServer(settings_factory(batch_wait_ms=1000)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        http.post("/gallery", files=[upload(p) for p in photos]).raise_for_status()

        def query(path: Path) -> str:
            response = http.post(
                "/query", files=[upload(path, "image")], params={"k": 1}, timeout=60
            )
            response.raise_for_status()
            return response.json()["faces"][0]["matches"][0]["source"]

        before = batch_stats(http.get("/metrics").text)
        with concurrent.futures.ThreadPoolExecutor(len(photos)) as pool:
            assert list(pool.map(query, photos)) == [p.name for p in photos]
        after = batch_stats(http.get("/metrics").text)
    calls, crops = after[0] - before[0], after[1] - before[1]
    assert crops == len(photos) and calls < len(photos), f"{crops} crops in {calls} calls"


def batch_stats(metrics: str) -> tuple[float, float]:
    """(embedder calls, crops embedded) from the Prometheus text."""
    count = re.search(r"^facefind_embed_batch_size_count (\S+)", metrics, re.M)
    total = re.search(r"^facefind_embed_batch_size_sum (\S+)", metrics, re.M)
    assert count and total
    return float(count.group(1)), float(total.group(1))
