"""How errors read over HTTP: one status and one wording per kind of problem."""

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
    StoreUnavailable,
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
    (StoreUnavailable, 503),
    (ModelNotFound, 503),
)


def status_for(exc: FacefindError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def no_such_entry(id: str) -> str:
    """The one sentence of a 404 for a gallery id, whichever route or layer noticed it."""
    return f"There is no gallery entry with id {id!r}."


def too_many_files(limit: int) -> str:
    return f"At most {limit} images can be sent in one request."


def sentence(text: str) -> str:
    """A core message (``no gallery entry with id 'x'``) as the API's other sentences read."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else f"{text}."
