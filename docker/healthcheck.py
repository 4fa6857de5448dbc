"""Container health probe: exit 0 when the service answers ``GET /health`` with 200.

Python instead of curl so the final image needs no extra packages; the port comes from
FACEFIND_PORT, the variable the service itself binds to, so the two cannot disagree.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

DEFAULT_PORT = "8000"
HEALTH_PATH = "/health"
"""Answers 200 while the process is alive (service/api/routes/system.py)."""


def health_url(env: Mapping[str, str]) -> str:
    """The /health URL of the service in this container, from its own settings."""
    port = env.get("FACEFIND_PORT") or DEFAULT_PORT
    return f"http://127.0.0.1:{port}{HEALTH_PATH}"


def probe(url: str, timeout: float = 4.0) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    url = argv[0] if argv else health_url(os.environ)
    if probe(url):
        return 0
    print(f"unhealthy: no 200 from {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
