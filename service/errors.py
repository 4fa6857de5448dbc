"""How the core's errors read over HTTP: one status per kind of problem."""

from __future__ import annotations

from indexer.errors import (
    Conflict,
    FacefindError,
    ImageTooLarge,
    ModelMismatch,
    ModelNotFound,
    NoFaceFound,
    NotFound,
    StoreCorrupt,
    UnreadableImage,
)


class UploadTooLarge(FacefindError):
    """An uploaded file is over ``max_upload_bytes``."""


# Most specific first: ImageTooLarge is an UnreadableImage, WeightsUnavailable a ModelNotFound.
STATUS: tuple[tuple[type[FacefindError], int], ...] = (
    (UploadTooLarge, 413),
    (ImageTooLarge, 413),
    (UnreadableImage, 415),
    (NoFaceFound, 422),
    (NotFound, 404),
    (Conflict, 409),
    (ModelMismatch, 409),
    (StoreCorrupt, 503),
    (ModelNotFound, 503),
)


def status_for(exc: FacefindError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400
