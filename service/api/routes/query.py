"""``POST /query`` and ``POST /query/batch``: who is in this photo?"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from service.api.deps import EngineDep, require_api_key
from service.api.routes import PROTECTED, UPLOAD
from service.schemas import QueryBatchPublic, QueryPublic
from service.searching import query_upload, query_uploads

router = APIRouter(
    prefix="/query", tags=["query"], dependencies=[Depends(require_api_key)], responses=PROTECTED
)

K = Annotated[int, Query(ge=1, le=100, description="How many gallery faces to return per face.")]
Faces = Annotated[
    Literal["largest", "all"],
    Query(description="Search for the largest face only, or for every face in the image."),
]
MinSimilarity = Annotated[
    float | None,
    Query(
        ge=-1.0,
        le=1.0,
        description="Leave out gallery faces less similar than this. A face whose best match "
        "is below it comes back with no matches: an unknown person.",
    ),
]


@router.post("", response_model=QueryPublic, responses=UPLOAD, summary="Search with one photo")
async def query(
    engine: EngineDep,
    image: Annotated[UploadFile, File(description="A photo; the format is read from its bytes.")],
    k: K = 10,
    faces: Faces = "largest",
    min_similarity: MinSimilarity = None,
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
    k: K = 10,
    faces: Faces = "largest",
    min_similarity: MinSimilarity = None,
) -> QueryBatchPublic:
    """Like ``POST /query`` for each image; an unreadable one is listed under ``rejected``
    (with the status it would have had alone) and does not fail the others."""
    if len(images) > engine.settings.max_files:
        raise HTTPException(
            422,
            f"At most {engine.settings.max_files} images can be sent in one request.",
        )
    return await query_uploads(engine, images, k, faces, min_similarity)
