"""Builds the FastAPI app: ``create_app(settings)``.

The model, the detector and the gallery store are loaded once in the lifespan and released in
its ``finally``; nothing heavy lives in a module global. ``uvicorn --factory service.main:create_app``
works too (settings then come from the environment alone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from indexer.errors import FacefindError
from service.api import exception_handlers
from service.api.limits import BodyLimitMiddleware
from service.api.routes import gallery, query, system
from service.engine import Engine
from service.metrics import Metrics, MetricsMiddleware
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
VERSION = "0.1.0"
DESCRIPTION = """
Self-hosted face search. Enrol photos into a gallery (`POST /gallery`), then search it with a
photo (`POST /query`): every face found gets the most similar gallery faces, best first.

Every error is JSON `{"detail": "..."}`. When API keys are configured, send one in the
`X-API-Key` header on every route but `/health` and `/ready` (the web page at `/` and these
docs hold no data and are open). Images are recognised by their content, never their name:
413 for a file over the upload limit or with too many pixels, 415 for what is not an image.
"""


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            engine = await run_in_threadpool(Engine.open, settings, metrics)
        except (FacefindError, ValueError, OSError) as exc:
            app.state.startup_error = str(exc)
            raise
        app.state.engine = engine
        saver = asyncio.create_task(engine.save_index_periodically())
        try:
            yield
        finally:
            saver.cancel()
            app.state.engine = None
            await run_in_threadpool(engine.close)

    app = FastAPI(
        title="facefind",
        description=DESCRIPTION,
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.startup_error = None
    exception_handlers.install(app)
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.include_router(system.public_router)
    app.include_router(system.router)
    app.include_router(query.router)
    app.include_router(gallery.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
