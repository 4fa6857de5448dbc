"""Fixtures for tests/docker: the parsed Docker files and the helper scripts of docker/."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest
from docker_files import DOCKERFILES, Dockerfile, load_compose, load_script, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, Dockerfile]:
    return {name: parse_dockerfile(path) for name, path in DOCKERFILES.items()}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml with every variable at its default."""
    return load_compose()


@pytest.fixture(scope="session")
def healthcheck() -> ModuleType:
    return load_script("healthcheck")


@pytest.fixture(scope="session")
def indexer_entrypoint() -> ModuleType:
    return load_script("indexer_entrypoint")


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], None]:
    """Put exactly these FACEFIND_* variables in the environment (the others removed)."""

    def apply(env: Mapping[str, str]) -> None:
        for key in [k for k in os.environ if k.startswith("FACEFIND_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))

    return apply
