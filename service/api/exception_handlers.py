"""Every error leaves the service as JSON ``{"detail": "<a sentence>"}``.

The core raises its own errors (``indexer.errors``); this is the one place that turns them
into HTTP statuses. Validation errors keep FastAPI's list under ``errors`` for programs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.errors import Conflict, FacefindError, NotFound
from service.errors import no_such_entry, sentence, status_for

log = logging.getLogger(__name__)

PLAIN = {
    404: "There is nothing at this address.",
    405: "This address does not accept that HTTP method.",
}


async def facefind_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacefindError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s", exc)
    return JSONResponse({"detail": describe(exc, request)}, status_code=status)


def describe(exc: FacefindError, request: Request | None = None) -> str:
    """The core's message, worded as the service words the same kind of error elsewhere."""
    entry_id = request.path_params.get("id") if request is not None else None
    if isinstance(exc, NotFound) and isinstance(entry_id, str):
        return no_such_entry(entry_id)
    if isinstance(exc, NotFound | Conflict):
        return sentence(str(exc))
    return str(exc)


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if not isinstance(detail, str) or detail in ("Not Found", "Method Not Allowed"):
        detail = PLAIN.get(exc.status_code, str(detail))
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    parts = [f"{_where(e['loc'])}: {e['msg']}" for e in errors]
    detail = "Invalid request: " + "; ".join(parts) + "."
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(
        {"detail": "An unexpected error happened on the server; it has been logged."},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(FacefindError, facefind_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


def _where(loc: list[str]) -> str:
    """``["query", "k"]`` -> ``k``; a missing body part names itself."""
    names = [p for p in loc if p not in ("query", "body", "path", "header", "form")]
    return ".".join(names) or "request"
