"""``python -m service``: serve the REST API and the web page with uvicorn.

Settings come from FACEFIND_* environment variables; the flags override them. A problem the
user can fix (no model, a missing detector model file, a gallery built with another model)
ends the process with one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import uvicorn

from indexer.errors import ConfigError
from indexer.settings_flags import add_settings_flags, load_settings
from service.settings import SERVICE_FLAGS, ServiceSettings

if TYPE_CHECKING:  # FastAPI loads only when serving, not for --help
    from fastapi import FastAPI

USAGE_ERROR = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve facefind's REST API (OpenAPI at /docs) and web page (/). Every "
        "setting can also be given as an environment variable FACEFIND_<NAME>, e.g. "
        "FACEFIND_API_KEYS, FACEFIND_MAX_UPLOAD_BYTES, FACEFIND_CORS_ORIGINS, FACEFIND_DEVICE.",
    )
    add_settings_flags(parser, *SERVICE_FLAGS)
    return parser.parse_args(argv)


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def configure_logging(level: str) -> None:
    """One line per start-up stage, and nothing that looks like an error when nothing is wrong.

    Must run before FAISS is imported: its loader logs, at INFO, a ModuleNotFoundError for each
    CPU-specific build it tries before the one this machine has. torch logs "No CUDA runtime
    is found" when torch.compile first loads its C++ toolchain, also on machines with no GPU
    at all. Both are normal; a real failure of either still surfaces as an exception.
    """
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level == "debug":
        return  # everything, for whoever asks
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # A filter on the logger itself: torch resets the levels of its loggers when it configures
    # its own logging, but keeps their filters.
    logging.getLogger("torch.utils.cpp_extension").addFilter(_DropMessages("No CUDA runtime"))


class _HideStartupTraceback(logging.Filter):
    """The one-line reason is printed at exit; the lifespan's traceback would only bury it."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        failed = getattr(self.app.state, "startup_error", None)
        return not (failed and str(record.msg).startswith("Traceback"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(ServiceSettings, args)
    except ConfigError as exc:
        print(f"facefind: error: invalid settings: {exc}", file=sys.stderr)
        return USAGE_ERROR
    configure_logging(settings.log_level)
    from service.main import create_app  # torch and the rest load only when serving, not for --help

    app = create_app(settings)
    logging.getLogger("uvicorn.error").addFilter(_HideStartupTraceback(app))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:
        if app.state.startup_error is None:
            raise
    if app.state.startup_error is not None:
        print(f"facefind: error: {app.state.startup_error}", file=sys.stderr)
        return USAGE_ERROR
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
