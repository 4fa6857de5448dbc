"""Fixtures of the reliability tests: real face photos and real service processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_testing import StartService
from service_process import ServiceProcess


@pytest.fixture(scope="session")
def face_photos(shared_data: Path) -> list[Path]:
    """five-celebrity photos: tight crops in which YuNet finds the face."""
    return sorted((shared_data / "five-celebrity").glob("*/*.jpg"))


@pytest.fixture(scope="session")
def lfw_photos(shared_data: Path) -> list[Path]:
    """Distinct LFW photos (250x250, one or more faces): plenty of new faces to add."""
    return sorted((shared_data / "lfw").glob("*/*.jpg"))


@pytest.fixture
def start_service(tmp_path: Path, model_path: Path, yunet_model: Path) -> Iterator[StartService]:
    """Start ``python -m service`` over a data directory; every one left is killed after."""
    started: list[ServiceProcess] = []

    def start(data_dir: Path, wait: bool = True, **env: str) -> ServiceProcess:
        log = tmp_path / f"service-{len(started)}.log"
        service = ServiceProcess(data_dir, model_path, yunet_model, log, env)
        started.append(service)
        return service.start(wait=wait)

    yield start
    for service in started:
        service.kill()
