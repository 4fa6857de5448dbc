"""docker/healthcheck.py against a real HTTP server: healthy only on a 200 from /health."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest
from docker_files import ROOT

SCRIPT = ROOT / "docker" / "healthcheck.py"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """Quiet: the test output is not the place for access logs."""


@pytest.fixture
def server_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.server_close()
    return port


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFIND_")} | env
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_url_follows_facefind_port(healthcheck: ModuleType) -> None:
    assert healthcheck.health_url({"FACEFIND_PORT": "9001"}) == "http://127.0.0.1:9001/health"
    assert healthcheck.health_url({}) == "http://127.0.0.1:8000/health"


def test_healthy_when_health_answers_200(server_port: int) -> None:
    result = run_script({"FACEFIND_PORT": str(server_port)})
    assert result.returncode == 0, result.stderr


def test_unhealthy_on_an_error_status(healthcheck: ModuleType, server_port: int) -> None:
    assert healthcheck.main([f"http://127.0.0.1:{server_port}/ready"]) == 1
    assert healthcheck.main([f"http://127.0.0.1:{server_port}/health"]) == 0


def test_unhealthy_when_nothing_listens() -> None:
    result = run_script({"FACEFIND_PORT": str(free_port())})
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
