"""One APIRouter per resource."""

from typing import Any

from service.schemas import ErrorPublic

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "API keys are configured and none valid was sent."},
    413: {
        "model": ErrorPublic,
        "description": "The upload or the image's pixel count is too large.",
    },
    415: {"model": ErrorPublic, "description": "The file is not an image facefind can read."},
    422: {"model": ErrorPublic, "description": "A parameter is invalid."},
}
