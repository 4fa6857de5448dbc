"""/health, /ready, /info, /metrics, the OpenAPI document and the web page."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_process import ServiceProcess
from service_testing import LiveServer, SettingsFactory, upload

from service.main import create_app


def test_health_ready_info(client: TestClient, faces: dict[str, list[Path]]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "ready": True,
        "detail": "model and gallery index loaded",
        "embedder": "eager",
    }
    client.post("/gallery", files=[upload(p) for p in faces["madonna"][:2]], data={"label": "m"})
    info = client.get("/info").json()
    assert info["model"]["embedding_dim"] == 128 and info["model"]["input_size"] == 64
    assert info["model"]["crop_size"] == 64  # cut at the input size: no shrink
    assert info["model"]["arch"] == "resnet50" and len(info["model"]["fingerprint"]) == 16
    assert info["model"]["device"] == "cpu" and info["model"]["precision"] in (
        "float32",
        "bfloat16",
    )
    assert info["index_type"] == "Flat" and info["index_on_gpu"] is False
    assert info["gallery_size"] == 2 and info["labels"] == 1 and info["detector"] == "yunet"
    assert info["model"]["compiled"] is False  # the tests turn compiling off (tests/conftest.py)
    assert info["model"]["flip_average"] is False  # the test model says nothing of mirrors
    assert info["embedder"] == "eager"


def test_metrics_count_requests_stages_and_gallery(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    client.post("/gallery", files=[upload(faces["madonna"][0])])
    client.post("/query", files=[upload(faces["madonna"][1], "image")])
    client.get("/gallery/unknown-id")
    text = client.get("/metrics").text
    assert 'facefind_requests_total{method="POST",route="/query",status="200"} 1.0' in text
    assert 'facefind_requests_total{method="GET",route="/gallery/{id}",status="404"} 1.0' in text
    assert 'facefind_request_duration_seconds_count{method="POST",route="/gallery"} 1.0' in text
    for stage in ("decode", "detect", "embed", "search", "store"):
        assert f'facefind_stage_duration_seconds_count{{stage="{stage}"}}' in text
    assert 'facefind_stage_duration_seconds_count{stage="search"} 1.0' in text
    assert "facefind_gallery_faces 1.0" in text


def test_openapi_documents_every_route_and_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes >= {
        ("/query", "post"), ("/query/batch", "post"), ("/gallery", "post"), ("/gallery", "get"),
        ("/gallery", "delete"), ("/gallery/{id}", "get"), ("/gallery/{id}", "patch"),
        ("/gallery/{id}", "delete"), ("/gallery/{id}/image", "get"), ("/health", "get"),
        ("/ready", "get"), ("/info", "get"), ("/metrics", "get"),
    }  # fmt: skip
    schemas = spec["components"]["schemas"]
    for name in ("QueryPublic", "QueryFacePublic", "MatchPublic", "GalleryAddPublic"):
        assert name in schemas
    assert (
        "already in the gallery"
        in schemas["AddedEntryPublic"]["properties"]["duplicate"]["description"]
    )
    assert "duplicate" in spec["paths"]["/gallery"]["post"]["description"]
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 200


def test_the_web_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="query-file"' in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").status_code == 200


def wait_until_compiled(http: httpx.Client, timeout: float = 1500) -> str:
    """Compiling takes minutes on 2 idle cores, far longer on busy ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = http.get("/ready").json()["embedder"]
        if state != "compiling":
            return state
        time.sleep(1)
    pytest.fail(f"the embedder was still compiling after {timeout:.0f} s")


@pytest.mark.timeout(1800)
def test_the_eager_embedder_serves_while_the_compiled_one_is_built(
    tmp_path: Path,
    start_service: Callable[..., ServiceProcess],
    faces: dict[str, list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``python -m service`` as shipped (FACEFIND_COMPILE unset): ready before compiling ends,
    answers meanwhile, then switches to the compiled embedder with the same answers."""
    monkeypatch.delenv("FACEFIND_COMPILE")
    photos = faces["ben_afflek"][:3]
    service = start_service(tmp_path / "data")
    with httpx.Client(base_url=service.url, timeout=120) as http:
        ready = http.get("/ready").json()
        assert ready["ready"] is True and ready["embedder"] == "compiling", ready
        info = http.get("/info").json()
        assert info["embedder"] == "compiling" and info["model"]["compiled"] is False
        added = http.post("/gallery", files=[upload(p) for p in photos], data={"label": "ben"})
        assert added.status_code == 200, added.text
        ids = [entry["id"] for entry in added.json()["added"]]
        query = {"files": [upload(photos[1], "image")], "params": {"k": 3}}
        eager = http.post("/query", **query).json()["faces"][0]["matches"]
        assert wait_until_compiled(http) == "compiled"
        assert http.get("/info").json()["model"]["compiled"] is True
        compiled = http.post("/query", **query).json()["faces"][0]["matches"]
    assert [m["id"] for m in eager] == [m["id"] for m in compiled] and compiled[0]["id"] == ids[1]
    for before, after in zip(eager, compiled, strict=True):
        assert abs(before["similarity"] - after["similarity"]) < 0.02  # bf16 either way
    assert service.stop() in (0, -signal.SIGTERM)
    log = service.text()
    assert re.search(r"compiling the embedder, about \d+ s; serving meanwhile", log), log
    assert re.search(r"embedder: compiled in \d+ s, serving compiled", log), log
    assert_quiet(log)


def test_a_stop_while_compiling_is_clean(
    tmp_path: Path,
    start_service: Callable[..., ServiceProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FACEFIND_COMPILE")
    service = start_service(tmp_path / "data")
    assert httpx.get(f"{service.url}/ready").json()["embedder"] == "compiling"
    assert service.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in service.text() and "embedder: compiled" not in service.text()


def assert_quiet(log: str) -> None:
    """Nothing that looks like an error when nothing is wrong (issue 14)."""
    for noise in (" WARNING ", " ERROR ", "Traceback", "ModuleNotFoundError", "No CUDA runtime"):
        assert noise not in log, log


def test_a_first_start_logs_one_line_per_stage(
    tmp_path: Path, start_service: Callable[..., ServiceProcess], faces: dict[str, list[Path]]
) -> None:
    """A new, empty store, as a newcomer starts it; then a restart on the grown gallery."""
    for start, size in enumerate((0, 1)):
        service = start_service(tmp_path / "data")
        if start == 0:
            photo = [upload(faces["madonna"][0])]
            httpx.post(f"{service.url}/gallery", files=photo, timeout=60).raise_for_status()
        assert service.stop() in (0, -signal.SIGTERM)
        log = service.text()
        assert_quiet(log)
        stages = [
            re.search(rf"INFO service\.engine: {stage}: (.*)", log)
            for stage in ("model", "device", "detector", "gallery", "index", "embedder")
        ]
        assert all(stages), log
        model, device, detector, gallery, index, embedder = (m.group(1) for m in stages if m)
        assert "resnet50" in model and "128-d" in model and device.startswith("cpu")
        assert detector.startswith("yunet") and gallery.endswith(f"{size} faces")
        assert index.startswith("Flat") and embedder.startswith("eager")
        for stage in ("model", "device", "detector", "gallery", "index"):
            assert log.count(f"service.engine: {stage}: ") == 1, log


def test_a_real_server_answers_on_loopback(
    settings_factory: SettingsFactory, faces: dict[str, list[Path]]
) -> None:
    with (
        LiveServer(settings_factory()) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        assert http.get("/health").json() == {"status": "ok"}
        added = http.post("/gallery", files=[upload(faces["ben_afflek"][0])], data={"label": "ben"})
        entry = added.json()["added"][0]
        hit = http.post("/query", files=[upload(faces["ben_afflek"][0], "image")]).json()
        assert hit["faces"][0]["matches"][0]["id"] == entry["id"]
        assert http.get(entry["image_url"]).headers["content-type"] == "image/jpeg"
        assert http.delete(f"/gallery/{entry['id']}").json() == {"deleted": 1}
        assert http.get("/info").json()["gallery_size"] == 0


def test_ready_is_503_until_the_lifespan_has_loaded_everything(
    settings_factory: SettingsFactory,
) -> None:
    app = create_app(settings_factory())
    outside = TestClient(app)  # no lifespan run: nothing loaded
    assert outside.get("/ready").status_code == 503
    assert outside.get("/info").status_code == 503
    assert outside.get("/health").status_code == 200


def test_cors_origins_are_allowed_when_configured(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(cors_origins="http://photos.example")
    with TestClient(create_app(settings)) as client:
        preflight = client.options(
            "/query",
            headers={
                "Origin": "http://photos.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-API-Key",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "http://photos.example"
        other = client.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
