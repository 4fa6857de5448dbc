"""``POST /query`` and ``POST /query/batch``: who is in this photo?"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.exceptions import RequestValidationError

from service.api.deps import EngineDep, require_api_key
from service.api.routes import PROTECTED, UPLOAD, FacesMode
from service.errors import too_many_files
from service.schemas import QueryBatchPublic, QueryPublic
from service.searching import query_upload, query_uploads

router = APIRouter(
    prefix="/query", tags=["query"], dependencies=[Depends(require_api_key)], responses=PROTECTED
)

K = Annotated[int, Query(ge=1, le=100, description="How many gallery faces to return per face.")]
Faces = Annotated[
    FacesMode,
    Query(description="Search for the largest face only, or for every face in the image."),
]


def min_similarity_floor(
    min_similarity: Annotated[
        str,
        Query(
            description="Leave out gallery faces less similar than this: `auto` (the default) "
            "is the model's calibrated same-person similarity (at most 1 in 100 pairs of "
            "different people reach it; no floor for a model without calibration), a number "
            "in [-1, 1] sets it, `none` returns all k. A face with no match left is an "
            "unknown person.",
            examples=["auto", "0.5", "none"],
        ),
    ] = "auto",
) -> float | Literal["auto"] | None:
    if min_similarity in ("auto", "none"):
        return None if min_similarity == "none" else "auto"
    try:
        value = float(min_similarity)
    except ValueError:
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        # the same 422 as every other bad parameter, through the app's validation handler
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "min_similarity"),
                    "msg": "must be auto, none or a number from -1 to 1",
                    "input": min_similarity,
                }
            ]
        )
    return value


MinSimilarity = Annotated[float | Literal["auto"] | None, Depends(min_similarity_floor)]


@router.post("", response_model=QueryPublic, responses=UPLOAD, summary="Search with one photo")
async def query(
    engine: EngineDep,
    image: Annotated[UploadFile, File(description="A photo; the format is read from its bytes.")],
    min_similarity: MinSimilarity,
    k: K = 10,
    faces: Faces = "largest",
) -> QueryPublic:
    """Detect faces, embed them and return the most similar gallery faces, best first.

    With no face found, the whole image is searched (``face_found`` false). Errors: 413 for a
    file over the upload limit or an image with too many pixels, 415 for what is not an image.
    """
    return await query_upload(engine, image, k, faces, min_similarity)


@router.post(
    "/batch", response_model=QueryBatchPublic, responses=UPLOAD, summary="Search with many photos"
)
async def query_batch(
    engine: EngineDep,
    images: Annotated[list[UploadFile], File(description="One or more photos.")],
    min_similarity: MinSimilarity,
    k: K = 10,
    faces: Faces = "largest",
) -> QueryBatchPublic:
    """Like ``POST /query`` for each image; an unreadable one is listed under ``rejected``
    (with the status it would have had alone) and does not fail the others."""
    if len(images) > engine.settings.max_files:
        raise HTTPException(422, too_many_files(engine.settings.max_files))
    return await query_uploads(engine, images, k, faces, min_similarity)
