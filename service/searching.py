"""A query image's way through the service: decode, detect, embed, search, report."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from fastapi import UploadFile

from indexer.errors import FacefindError
from indexer.faceflow import face_dict, match_dict, threshold
from indexer.pipeline import FaceMode
from indexer.records import Match
from service.engine import Engine
from service.errors import status_for
from service.schemas import (
    MatchPublic,
    QueryBatchPublic,
    QueryFacePublic,
    QueryPublic,
    RejectedPublic,
    TimingsPublic,
)
from service.uploads import read_upload, upload_name

MinSimilarity = float | Literal["auto"] | None
"""A number, ``auto`` (the model's calibrated same-person similarity; none if uncalibrated)
or None (every one of the k nearest)."""


async def query_upload(
    engine: Engine, upload: UploadFile, k: int, mode: FaceMode, min_similarity: MinSimilarity
) -> QueryPublic:
    """Every face (or the largest) of one image and its nearest gallery faces.

    With no face found, the whole image stands in for one, as the indexer does.
    """
    name = upload_name(upload)
    data = await read_upload(upload, engine.settings.max_upload_bytes)
    start = time.perf_counter()
    image = await engine.offload(engine.pipeline.from_bytes, data, name, mode, True)
    embed_start = time.perf_counter()
    vectors = await engine.batcher.embed([face.crop for face in image.faces])
    search_start = time.perf_counter()
    matches = await engine.offload(engine.store.search, vectors, k)
    end = time.perf_counter()
    stages = {**image.timings, "embed": search_start - embed_start, "search": end - search_start}
    engine.metrics.observe_stages(stages)
    same_person_at = threshold(engine.embedder.info)
    floor = same_person_at if min_similarity == "auto" else min_similarity
    faces = [
        QueryFacePublic(
            **face_dict(image, i),
            matches=[_match(m, same_person_at) for m in found if _close_enough(m, floor)],
        )
        for i, found in enumerate(matches)
    ]
    timings = {f"{stage}_ms": seconds * 1000.0 for stage, seconds in stages.items()}
    return QueryPublic(
        file=name,
        width=image.width,
        height=image.height,
        face_found=image.face_found,
        faces=faces,
        model=engine.embedder.fingerprint,
        timings=TimingsPublic(**timings, total_ms=(end - start) * 1000.0),
    )


async def query_uploads(
    engine: Engine,
    uploads: list[UploadFile],
    k: int,
    mode: FaceMode,
    min_similarity: MinSimilarity,
) -> QueryBatchPublic:
    """Several images at once: they share embedder batches; a bad one fails only itself."""
    outcomes = await asyncio.gather(
        *(query_upload(engine, u, k, mode, min_similarity) for u in uploads),
        return_exceptions=True,
    )
    results, rejected = [], []
    for upload, outcome in zip(uploads, outcomes, strict=True):
        if isinstance(outcome, FacefindError):
            rejected.append(
                RejectedPublic(
                    file=upload_name(upload), detail=str(outcome), status=status_for(outcome)
                )
            )
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append(outcome)
    return QueryBatchPublic(results=results, rejected=rejected)


def _close_enough(match: Match, min_similarity: float | None) -> bool:
    return min_similarity is None or match.similarity >= min_similarity


def _match(match: Match, same_person_at: float | None) -> MatchPublic:
    return MatchPublic(
        **match_dict(match, same_person_at), image_url=f"/gallery/{match.record.id}/image"
    )
