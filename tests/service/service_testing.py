"""Helpers of the service tests: real servers and processes, uploads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from service.main import create_app
from service.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]

SettingsFactory = Callable[..., ServiceSettings]
"""The ``settings_factory`` fixture: settings over a fresh data directory."""


def make_settings(data_dir: Path, model: Path, yunet: Path, **extra: object) -> ServiceSettings:
    return ServiceSettings(
        model=str(model),
        data_dir=data_dir,
        detector="yunet",
        detector_model=yunet,
        **extra,
    )


class LiveServer:
    """A real uvicorn on 127.0.0.1 in a thread, on a port the OS picked."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.app = create_app(settings)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``python -m service`` as a child process, the way a user runs it."""

    def __init__(self, data_dir: Path, model: Path, yunet: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("FACEFIND_") or k == "FACEFIND_COMPILE"
        }
        env["FACEFIND_INDEX_SAVE_SECONDS"] = "3600"  # the index file goes stale: worst case
        cmd = [sys.executable, "-m", "service", "--port", str(self.port), "--data-dir",
               str(data_dir), "--model", str(model), "--detector", "yunet",
               "--detector-model", str(yunet), *args]  # fmt: skip
        self.log = data_dir.parent / f"service-{self.port}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the service did not get ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        """Graceful: SIGTERM, as systemd or docker stop would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def upload(path: Path, field: str = "images", name: str | None = None) -> tuple[str, tuple]:
    return (field, (name or path.name, path.read_bytes(), "image/jpeg"))
