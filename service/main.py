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

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from indexer.errors import FacefindError
from service.api import exception_handlers
from service.api.limits import BodyLimitMiddleware
from service.api.routes import gallery, people, query, system
from service.engine import Engine
from service.metrics import Metrics, MetricsMiddleware
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = "/static/vendor"
"""Swagger UI and ReDoc, served from the package (see static/vendor/README.md): /docs and
/redoc work with no network, as nothing else in facefind needs one at run time."""
FAVICON = "/static/favicon.svg"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:"
)
"""The docs pages may load nothing from elsewhere: ReDoc's sidebar would fetch its maker's logo
from cdn.redoc.ly (no option turns it off); the browser now skips it and hides the image."""
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
        except (FacefindError, OSError) as exc:
            app.state.startup_error = str(exc)
            raise
        app.state.engine = engine
        engine.start_compiling()
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
        docs_url=None,
        redoc_url=None,
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
    app.include_router(people.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def web_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    add_docs(app)
    return app


def add_docs(app: FastAPI) -> None:
    """/docs and /redoc as FastAPI would serve them, but with the assets of the package
    instead of a CDN (FastAPI's "self-hosting JavaScript and CSS for docs" recipe)."""
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def prefix(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{FAVICON}",
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            redoc_js_url=f"{root}{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{FAVICON}",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page
