"""The `postgres` profile of docker-compose.yml: PostgreSQL and several service replicas.

Read as the other compose tests read the file (no Docker engine); docker-compose's own
`config` checks it where docker-compose is installed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from docker_files import ROOT, Dockerfile, load_compose
from psycopg.conninfo import conninfo_to_dict
from test_compose import container_env, environment
from test_static_checks import tool

from service.settings import ServiceSettings

PROFILE = "postgres"


def test_the_profile_runs_the_official_image_and_several_replicas(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["postgres"]["profiles"] == services["replica"]["profiles"] == [PROFILE]
    assert services["postgres"]["image"].split(":") == ["postgres", "16"]
    assert int(services["replica"]["deploy"]["replicas"]) >= 2
    assert services["replica"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["replica"]["command"] == services["service"]["command"]
    assert services["replica"]["image"] == services["service"]["image"]


def test_replicas_reach_the_database_the_profile_creates(
    compose: dict[str, Any],
    dockerfiles: dict[str, Dockerfile],
    settings_env: Callable[[Mapping[str, str]], None],
) -> None:
    db = environment(compose, "postgres")
    settings_env(container_env(dockerfiles["cpu"], environment(compose, "replica")))
    settings = ServiceSettings()
    assert settings.store_url is not None
    url = conninfo_to_dict(settings.store_url)
    assert url["host"] == "postgres" and url["dbname"] == db["POSTGRES_DB"]
    assert url["user"] == db["POSTGRES_USER"] and url["password"] == db["POSTGRES_PASSWORD"]
    assert settings.host == "0.0.0.0"


def test_replicas_do_not_share_the_sqlite_volume(compose: dict[str, Any]) -> None:
    """Each keeps its own index cache; the data volume is the SQLite deployment's."""
    assert "volumes" not in compose["services"]["replica"]
    assert "facefind-postgres" in compose["volumes"]


@pytest.mark.parametrize("env", [{}, {"REPLICAS": "2", "REPLICA_PORTS": "9001-9002"}])
def test_docker_compose_accepts_the_profile(env: dict[str, str]) -> None:
    result = subprocess.run(
        [tool("docker-compose"), "-f", "docker-compose.yml", "--profile", PROFILE, "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"} | env,
    )
    assert result.returncode == 0, result.stderr
    assert load_compose(env)["services"]["replica"]["ports"] == [
        f"{env.get('REPLICA_PORTS', '8001-8003')}:8000"
    ]
