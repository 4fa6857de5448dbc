"""One APIRouter per resource, and the error responses their OpenAPI description declares."""

from typing import Any, Literal

from service.schemas import ErrorPublic

Responses = dict[int | str, dict[str, Any]]

FacesMode = Literal["largest", "all"]
"""``faces`` of ``POST /query``, ``/query/batch`` and ``/gallery``, and of the web page: the
default is ``largest`` everywhere. A label or an id names one person, so enrolling must default
to one face per photo; the same default for searching keeps one rule for the whole API (and its
answers as they were), and the web page offers ``all`` one click away."""

_WHY = {
    400: "The request body could not be parsed.",
    401: "API keys are configured and none valid was sent.",
    404: "There is no gallery entry with this id.",
    409: "A gallery entry with this id already exists.",
    413: "The request, an upload or an image's pixel count is too large.",
    415: "The file is not an image facefind can read.",
    422: "A parameter is invalid, or (single image) no face was found.",
    503: "The service is starting up or shutting down.",
}


def errors(*statuses: int) -> Responses:
    """Every error body is ``{"detail": "<a sentence>"}``; 422 adds FastAPI's ``errors`` list."""
    return {status: {"model": ErrorPublic, "description": _WHY[status]} for status in statuses}


PROTECTED = errors(401, 422, 503)
"""What any route behind the API key and the engine can answer."""

UPLOAD = errors(400, 413, 415)
BY_ID = errors(404)
