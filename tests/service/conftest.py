"""Fixtures of the service tests: real settings, apps, uvicorn servers and face images."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_process import ServiceProcess
from service_testing import LiveServer, make_settings

from service.main import create_app
from service.settings import ServiceSettings


@pytest.fixture(scope="session")
def faces(shared_data: Path) -> dict[str, list[Path]]:
    """five-celebrity: person -> sorted image paths (tight crops; YuNet finds every face)."""
    root = shared_data / "five-celebrity"
    return {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}


@pytest.fixture(scope="session")
def group_photo(shared_data: Path, yunet_model: Path) -> Path:
    """An LFW photo in which YuNet finds at least two faces."""
    from indexer.decode import read_image
    from indexer.detect import make_detector

    detector = make_detector("yunet", yunet_model)
    for path in sorted((shared_data / "lfw").glob("A*/*.jpg"))[:200]:
        if len(detector.detect(read_image(path))) >= 2:
            return path
    pytest.fail("no LFW photo with two faces among the first 200")


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    """A smooth grey gradient: a valid image without any face."""
    ramp = np.tile(np.linspace(60, 200, 160, dtype=np.uint8), (120, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def settings_factory(
    tmp_path: Path, model_path: Path, yunet_model: Path
) -> Callable[..., ServiceSettings]:
    """Settings for a fresh data directory; keyword arguments override any field."""

    def build(**extra: object) -> ServiceSettings:
        extra.setdefault("data_dir", tmp_path / "data")
        data_dir = extra.pop("data_dir")
        return make_settings(data_dir, model_path, yunet_model, **extra)  # type: ignore[arg-type]

    return build


@pytest.fixture
def client(settings_factory: Callable[..., ServiceSettings]) -> Iterator[TestClient]:
    """A TestClient over an app with an empty gallery of its own (lifespan run)."""
    with TestClient(create_app(settings_factory())) as test_client:
        yield test_client


@pytest.fixture
def live_server(settings_factory: Callable[..., ServiceSettings]) -> Iterator[LiveServer]:
    with LiveServer(settings_factory()) as server:
        yield server


@pytest.fixture
def start_service(model_path: Path, yunet_model: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(data_dir: Path) -> ServiceProcess:
        log = data_dir.parent / f"service-{len(started)}.log"
        # The index file is saved only at shutdown, so a kill leaves it stale: the worst case.
        env = {"FACEFIND_INDEX_SAVE_SECONDS": "3600"}
        service = ServiceProcess(data_dir, model_path, yunet_model, log, env)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.kill()
