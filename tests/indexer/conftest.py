"""Fixtures of the indexer tests: the gallery store's two back ends."""

from __future__ import annotations

import pytest
from postgres_server import PostgresServer, postgres_server

__all__ = ["postgres_server"]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None (SQLite in the store directory) or the URL of a new, empty PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
