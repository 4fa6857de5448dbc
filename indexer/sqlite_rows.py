"""One SQLite face row <-> one FaceRecord: the only place that encodes or decodes a row.

Boxes, metadata and landmarks are JSON text; landmarks are NULL for faces stored without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from indexer.records import Box, FaceRecord, Landmarks, NewFace

COLUMNS = (
    "rowid, id, label, source, content_hash, box, score, face_found, metadata, model, created,"
    " landmarks"
)


def encode(record: FaceRecord) -> tuple[Any, ...]:
    """A record as the column values after rowid, in COLUMNS order."""
    marks = None if record.landmarks is None else json.dumps(record.landmarks)
    return (
        record.id,
        record.label,
        record.source,
        record.content_hash,
        json.dumps(list(record.box)),
        record.score,
        int(record.face_found),
        json.dumps(record.metadata),
        record.model,
        record.created,
        marks,
    )


def decode(row: Sequence[Any]) -> FaceRecord:
    """The one decoder of a COLUMNS row."""
    _, id_, label, source, chash, box, score, found, meta, model, created, marks = row
    return FaceRecord(
        id_,
        label,
        source,
        chash,
        cast(Box, tuple(json.loads(box))),
        score,
        bool(found),
        json.loads(meta),
        model,
        created,
        as_points(json.loads(marks)) if marks is not None else None,
    )


def as_points(points: Iterable[Sequence[float]] | None) -> Landmarks | None:
    """Normalised to a list of (x, y) float pairs, whatever sequence type came in."""
    if points is None:
        return None
    return [(float(x), float(y)) for x, y in points]


def new_record(face: NewFace, id: str, model: str, now: float) -> FaceRecord:
    """The record a new face is stored as (and read back as)."""
    return FaceRecord(
        id,
        face.label,
        face.source,
        face.content_hash,
        cast(Box, tuple(face.box)),
        float(face.score),
        bool(face.face_found),
        dict(face.metadata),
        model,
        now,
        as_points(face.landmarks),
    )
