"""Adding photos to the gallery over HTTP.

Files are analysed concurrently (decode and detect in the thread pool, embedding batched), then
stored in one transaction on the writer thread. Only after that transaction has committed does
the caller get an answer, so every face in a reply survives a crash. A file whose exact bytes
are already in the gallery is not stored again: its existing entries come back marked
``duplicate``. That check is repeated on the writer thread, where no other write can interleave.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import UploadFile

from indexer.errors import FacefindError, NoFaceFound
from indexer.faceflow import new_faces
from indexer.pipeline import FaceMode, content_hash
from indexer.records import FaceRecord, NewFace
from service.engine import Engine
from service.errors import status_for
from service.schemas import AddedEntryPublic, GalleryAddPublic, RejectedPublic
from service.uploads import read_upload, upload_name


@dataclass
class EnrolOptions:
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    mode: FaceMode = "largest"
    whole_image: bool = False
    """Index the whole image when no face is found, as ``python -m indexer build`` does."""


@dataclass
class _Prepared:
    name: str
    content_hash: str
    faces: list[NewFace]
    existing: list[FaceRecord]


async def enrol(
    engine: Engine, uploads: list[UploadFile], options: EnrolOptions
) -> GalleryAddPublic:
    outcomes = await asyncio.gather(
        *(_prepare(engine, upload, options) for upload in uploads), return_exceptions=True
    )
    prepared: list[_Prepared] = []
    rejected: list[RejectedPublic] = []
    for upload, outcome in zip(uploads, outcomes, strict=True):
        if isinstance(outcome, FacefindError):
            status = status_for(outcome)
            rejected.append(
                RejectedPublic(file=upload_name(upload), detail=str(outcome), status=status)
            )
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            prepared.append(outcome)
    start = time.perf_counter()
    stored = await engine.write(_store, engine, prepared)
    engine.metrics.observe_stages({"store": time.perf_counter() - start})
    return GalleryAddPublic(added=stored, rejected=rejected)


async def _prepare(engine: Engine, upload: UploadFile, options: EnrolOptions) -> _Prepared:
    name = upload_name(upload)
    data = await read_upload(upload, engine.settings.max_upload_bytes)
    digest = content_hash(data)
    existing = await engine.offload(engine.store.find_by_hash, digest)
    if existing:
        return _Prepared(name, digest, [], existing)
    image = await engine.offload(
        engine.pipeline.from_bytes, data, name, options.mode, options.whole_image
    )
    engine.metrics.observe_stages(image.timings)
    if not image.faces:
        raise NoFaceFound(
            f"{name}: no face found. Send if_no_face=whole_image to index the whole image anyway."
        )
    start = time.perf_counter()
    vectors = await engine.batcher.embed([face.crop for face in image.faces])
    engine.metrics.observe_stages({"embed": time.perf_counter() - start})
    faces = await engine.offload(new_faces, image, vectors, name, options.label, options.metadata)
    if faces:
        faces[0].id = options.id
    return _Prepared(name, digest, faces, [])


def _store(engine: Engine, prepared: list[_Prepared]) -> list[AddedEntryPublic]:
    """Runs on the writer thread: one durable transaction for every new face of the request."""
    by_hash: dict[str, list[FaceRecord]] = {}
    new: list[NewFace] = []
    for item in prepared:
        if item.existing or item.content_hash in by_hash:
            continue
        known = engine.store.find_by_hash(item.content_hash)
        if known:
            item.existing = known
            continue
        by_hash[item.content_hash] = []
        new.extend(item.faces)
    for record in engine.store.add(new):
        by_hash[record.content_hash].append(record)
    engine.added(len(new))
    added: list[AddedEntryPublic] = []
    claimed: set[str] = set()
    for item in prepared:
        if item.existing:
            added.extend(AddedEntryPublic.of(r, duplicate=True) for r in item.existing)
        else:
            first = item.content_hash not in claimed
            claimed.add(item.content_hash)
            added.extend(
                AddedEntryPublic.of(r, duplicate=not first) for r in by_hash[item.content_hash]
            )
    return added
