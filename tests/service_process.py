"""``python -m service`` as a real child process, shared by every test package.

``tests/`` is on ``sys.path`` (its conftest sits there), so ``from service_process import ...``
works from any test folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    """This environment without FACEFIND_* settings, so the machine's cannot change a test.

    FACEFIND_COMPILE stays: tests/conftest.py sets it (off) for the whole run.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FACEFIND_") or k == "FACEFIND_COMPILE"
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``python -m service`` as a child process on 127.0.0.1, logging to a file.

    ``env`` adds FACEFIND_* settings on top of ``clean_env()``.
    """

    def __init__(
        self,
        data_dir: Path,
        model: Path,
        yunet: Path,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir, self.log = data_dir, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_env() | (env or {})
        self.cmd = [sys.executable, "-m", "service", "--host", "127.0.0.1",
                    "--port", str(self.port), "--data-dir", str(data_dir), "--model", str(model),
                    "--detector", "yunet", "--detector-model", str(yunet)]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> ServiceProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 240.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}):\n{self.text()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service did not get ready:\n{self.text()}")

    def wait_exit(self, timeout: float = 240.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or the OOM killer."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(60)

    def stop(self) -> int:
        """SIGTERM, as docker stop or systemd would."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
