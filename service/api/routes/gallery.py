"""The gallery: enrol photos, browse, relabel and delete faces."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Response, UploadFile
from fastapi.responses import JSONResponse

from service.api.deps import EngineDep, require_api_key
from service.api.routes import BY_ID, PROTECTED, UPLOAD, FacesMode, Responses, errors
from service.enrolment import EnrolOptions, enrol
from service.errors import no_such_entry, too_many_files
from service.schemas import (
    ID_PATTERN,
    DeletedPublic,
    GalleryAddPublic,
    GalleryEntryPublic,
    GalleryEntryUpdate,
    GalleryPublic,
    NothingAddedPublic,
    check_metadata,
)

router = APIRouter(
    prefix="/gallery",
    tags=["gallery"],
    dependencies=[Depends(require_api_key)],
    responses=PROTECTED,
)

EntryId = Annotated[str, Path(description="A gallery entry's id.")]
Label = Annotated[str | None, Form(min_length=1, max_length=200, description="Who this is.")]


NOTHING_ADDED: Responses = {
    status: {
        "model": NothingAddedPublic,
        "description": f"{why} When no file at all was added, `rejected` lists every file with "
        "its reason; the status is theirs when they share one, else 422.",
    }
    for status, why in (
        (413, "The request or every file is too large, or has too many pixels."),
        (415, "No file is an image facefind can read."),
        (422, "A parameter is invalid, or no file had a face."),
    )
}


@router.post(
    "",
    response_model=GalleryAddPublic,
    responses={**UPLOAD, **errors(409), **NOTHING_ADDED},
    summary="Add photos",
)
async def add_faces(
    engine: EngineDep,
    images: Annotated[list[UploadFile], File(description="One or more photos.")],
    label: Label = None,
    metadata: Annotated[
        str | None, Form(description='A JSON object, e.g. {"city": "Oslo"}.')
    ] = None,
    id: Annotated[
        str | None, Form(pattern=ID_PATTERN, description="Your id, for a single image only.")
    ] = None,
    faces: Annotated[
        FacesMode,
        Query(
            description="Add the largest face of each photo (a label names one person), or "
            "every face."
        ),
    ] = "largest",
    if_no_face: Annotated[
        Literal["reject", "whole_image"],
        Query(description="With no face found: reject the file, or index the whole image."),
    ] = "reject",
) -> GalleryAddPublic | JSONResponse:
    """Detect, embed and store faces; answered only once they are on disk.

    A file that cannot be read or has no face is listed under ``rejected`` with the status it
    would have had alone, and the other files are still added. When no file at all was added,
    the answer is an error (their common status, or 422) with ``rejected`` kept in the body.
    The same bytes sent again are not stored twice: their existing entries come back in
    ``added`` with ``duplicate: true`` (label and metadata unchanged; use ``PATCH`` to change
    them).
    """
    if id is not None and (len(images) > 1 or faces == "all"):
        raise HTTPException(422, "An id can only be given for a single image with faces=largest.")
    if len(images) > engine.settings.max_files:
        raise HTTPException(422, too_many_files(engine.settings.max_files))
    options = EnrolOptions(label, _json_object(metadata), id, faces, if_no_face == "whole_image")
    result = await enrol(engine, images, options)
    if not result.added:
        return nothing_added(result)
    return result


def nothing_added(result: GalleryAddPublic) -> JSONResponse:
    """Every file was rejected: a 200 would read as success to a script that checks the status."""
    statuses = {r.status for r in result.rejected}
    status = statuses.pop() if len(statuses) == 1 else 422
    reasons = "; ".join(r.detail for r in result.rejected)
    body = NothingAddedPublic(detail=f"No photo was added: {reasons}", rejected=result.rejected)
    return JSONResponse(body.model_dump(), status_code=status)


@router.get("", response_model=GalleryPublic, summary="List gallery faces")
async def list_faces(
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    label: Annotated[str | None, Query(description="Only faces with this label.")] = None,
) -> GalleryPublic:
    records, total = await engine.offload(engine.store.list, offset, limit, label)
    data = [GalleryEntryPublic.of(r) for r in records]
    return GalleryPublic(data=data, count=total, offset=offset, limit=limit)


@router.delete("", response_model=DeletedPublic, summary="Delete every face with a label")
async def delete_label(
    engine: EngineDep,
    label: Annotated[str, Query(min_length=1, description="The label to delete.")],
) -> DeletedPublic:
    return DeletedPublic(deleted=await engine.write(engine.store.remove_label, label))


@router.get("/{id}", response_model=GalleryEntryPublic, responses=BY_ID, summary="One gallery face")
async def get_face(engine: EngineDep, id: EntryId) -> GalleryEntryPublic:
    return GalleryEntryPublic.of(await engine.offload(engine.store.get, id))


@router.get(
    "/{id}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The stored face crop."},
        **BY_ID,
    },
    summary="The stored face crop",
)
async def get_face_image(engine: EngineDep, id: EntryId) -> Response:
    await engine.offload(engine.store.get, id)
    jpeg = await engine.offload(engine.store.crop, id)
    if jpeg is None:
        raise HTTPException(404, f"The gallery entry {id!r} has no stored face image.")
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.patch(
    "/{id}",
    response_model=GalleryEntryPublic,
    responses={**BY_ID, **errors(400, 413)},
    summary="Change a label or metadata",
)
async def update_face(
    engine: EngineDep, id: EntryId, body: GalleryEntryUpdate
) -> GalleryEntryPublic:
    """Only the fields sent change; ``"label": null`` clears the label."""
    given = body.model_fields_set
    record = await engine.write(
        engine.store.update,
        id,
        label=body.label,
        metadata=body.metadata if "metadata" in given else None,
        clear_label="label" in given and body.label is None,
    )
    return GalleryEntryPublic.of(record)


@router.delete(
    "/{id}", response_model=DeletedPublic, responses=BY_ID, summary="Delete a gallery face"
)
async def delete_face(engine: EngineDep, id: EntryId) -> DeletedPublic:
    if not await engine.write(engine.store.remove, [id]):
        raise HTTPException(404, no_such_entry(id))
    return DeletedPublic(deleted=1)


def _json_object(text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    except RecursionError:
        raise HTTPException(422, "metadata is nested too deeply.") from None
    if not isinstance(value, dict):
        raise HTTPException(422, 'metadata must be a JSON object, e.g. {"city": "Oslo"}.')
    try:
        return check_metadata(value)
    except ValueError as exc:
        raise HTTPException(422, f"{exc}.") from exc
