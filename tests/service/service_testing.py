"""Helpers of the service tests: real servers and processes, uploads."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from service.main import create_app
from service.settings import ServiceSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""Headless Chromium as root on a machine with no network (see the browser tests)."""

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


def upload(path: Path, field: str = "images", name: str | None = None) -> tuple[str, tuple]:
    return (field, (name or path.name, path.read_bytes(), "image/jpeg"))


def screenshot(page: object, name: str) -> None:
    """Kept for a person to look at when FACEFIND_SCREENSHOTS names a directory."""
    target = os.environ.get("FACEFIND_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name), full_page=True)  # type: ignore[attr-defined]
