"""API keys: every route but /health and /ready needs one, when keys are configured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_testing import make_settings, upload

from service.api.deps import key_is_valid
from service.main import create_app

KEYS = ["first-key-0123456789", "second-key-abcdefghij"]


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, yunet_model: Path
) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("auth") / "data"
    settings = make_settings(data, model_path, yunet_model, api_keys=",".join(KEYS))
    assert settings.api_keys == KEYS
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def guarded_calls(client: TestClient, photo: Path, headers: dict[str, str]) -> list[int]:
    image = {"image": photo.read_bytes()}
    return [
        client.post("/query", files=image, headers=headers).status_code,
        client.post("/query/batch", files=[upload(photo)], headers=headers).status_code,
        client.post("/gallery", files=[upload(photo)], headers=headers).status_code,
        client.get("/gallery", headers=headers).status_code,
        client.get("/gallery/some-id", headers=headers).status_code,
        client.get("/gallery/some-id/image", headers=headers).status_code,
        client.patch("/gallery/some-id", json={"label": "x"}, headers=headers).status_code,
        client.delete("/gallery/some-id", headers=headers).status_code,
        client.delete("/gallery", params={"label": "x"}, headers=headers).status_code,
        client.get("/info", headers=headers).status_code,
        client.get("/metrics", headers=headers).status_code,
    ]


def test_without_a_valid_key_every_guarded_route_is_401(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    photo = faces["madonna"][0]
    for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": KEYS[0][:-1]}):
        assert guarded_calls(client, photo, headers) == [401] * 11
    response = client.get("/info", headers={"X-API-Key": "wrong"})
    assert "X-API-Key" in response.json()["detail"]
    assert client.get("/gallery").json()["detail"].startswith("A valid API key")
    assert client.get("/info").status_code == 401


def test_each_configured_key_opens_every_route(
    client: TestClient, faces: dict[str, list[Path]]
) -> None:
    photo = faces["madonna"][1]
    for key in KEYS:
        codes = guarded_calls(client, photo, {"X-API-Key": key})
        assert 401 not in codes
        assert codes[0] == 200 and codes[2] == 200 and codes[4] == 404


def test_health_ready_page_and_docs_need_no_key(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["ready"] is True
    assert client.get("/").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_keys_are_never_logged(
    client: TestClient, faces: dict[str, list[Path]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get("/gallery", headers={"X-API-Key": KEYS[1]})
        client.get("/gallery", headers={"X-API-Key": "wrong-guess"})
        client.post(
            "/query", files=[upload(faces["madonna"][2], "image")], headers={"X-API-Key": KEYS[0]}
        )
    assert not any(k in caplog.text for k in [*KEYS, "wrong-guess"])


def test_key_comparison() -> None:
    assert key_is_valid(KEYS[1], KEYS) and key_is_valid(KEYS[0], KEYS)
    assert not key_is_valid("", KEYS) and not key_is_valid(KEYS[0] + "x", KEYS)
    assert not key_is_valid("ключ", KEYS)
