"""Dependencies of the routes, as typed aliases that tests can override."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from service.engine import Engine
from service.settings import ServiceSettings

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Needed on every route but /health and /ready when the service has API keys "
    "configured (FACEFIND_API_KEYS).",
)


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    """The loaded engine; 503 while the service starts or shuts down."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None or not engine.ready:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The service is starting or shutting down; try again in a moment.",
        )
    return engine


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def key_is_valid(given: str, keys: list[str]) -> bool:
    """Constant-time against every key, so timing tells nothing about any of them."""
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(given.encode(), key.encode())
    return valid


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)]
) -> None:
    if not settings.api_keys:
        return
    if not key or not key_is_valid(key, settings.api_keys):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "A valid API key is needed: send it in the X-API-Key header.",
            headers={"WWW-Authenticate": "APIKey"},
        )
