"""What the API returns and accepts; the field descriptions are the OpenAPI documentation."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.records import FaceRecord

Box = Annotated[
    tuple[int, int, int, int],
    Field(description="Face box in image pixels: x, y, width, height (EXIF rotation applied)."),
]
Metadata = Annotated[dict[str, Any], Field(description="Free-form JSON object of the caller's.")]
Landmarks = Annotated[
    list[tuple[float, float]] | None,
    Field(
        description="Five [x, y] points in image pixels: right eye, left eye, nose tip, right "
        "and left mouth corners (the person's right first). Null where the detector gives "
        "none (Haar, a whole-image entry).",
    ),
]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_METADATA_DEPTH = 32
MAX_METADATA_BYTES = 64 * 1024


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata as it may be stored: bounded in depth and size, finite numbers only.

    Every answer that includes an entry carries its metadata, so what is accepted here must
    serialise later: a much deeper object would be stored, then fail every answer (500s on
    searches and listings) that includes it. Raises ValueError with a sentence for the caller.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"metadata may be nested at most {MAX_METADATA_DEPTH} levels deep")
        children = item.values() if isinstance(item, dict) else item  # only dicts and lists
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except ValueError as exc:
        raise ValueError("metadata may not hold NaN or infinite numbers") from exc
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata may be at most {MAX_METADATA_BYTES // 1024} KB of JSON")
    return value


class ErrorPublic(BaseModel):
    detail: str = Field(description="What went wrong, in a sentence for a person.")


EmbedderState = Literal["eager", "compiling", "compiled"]
EMBEDDER_STATE = (
    "Which embedder serves: `eager`; `compiling` (the eager one serves while the compiled one "
    "is built in the background, for a few minutes after start-up); `compiled`."
)


class RejectedPublic(BaseModel):
    file: str = Field(description="The uploaded file's name.")
    detail: str = Field(description="Why it was not used.")
    status: int = Field(description="The HTTP status this error would have on its own.")


_Entry = TypeVar("_Entry", bound="GalleryEntryPublic")


class GalleryEntryPublic(BaseModel):
    id: str
    label: str | None = Field(description="Who this is; null when unknown.")
    source: str = Field(description="The file the face came from (name as uploaded or indexed).")
    content_hash: str = Field(description="SHA-256 of the source file's bytes.")
    box: Box
    landmarks: Landmarks
    score: float = Field(description="Detection score in [0, 1]; 0 for a whole-image entry.")
    face_found: bool = Field(description="False when the whole image was indexed, no face found.")
    metadata: Metadata
    model: str = Field(description="Fingerprint of the model that made the face's vector.")
    created: float = Field(description="When it was added, seconds since the Unix epoch.")
    image_url: str = Field(description="Where the stored face crop (JPEG) is served.")

    @classmethod
    def of(cls: type[_Entry], record: FaceRecord, **extra: Any) -> _Entry:
        """The subclass it is called on, so ``AddedEntryPublic.of`` is an ``AddedEntryPublic``."""
        return cls(**asdict(record), image_url=f"/gallery/{record.id}/image", **extra)


class AddedEntryPublic(GalleryEntryPublic):
    duplicate: bool = Field(
        False,
        description="True when these exact bytes were already in the gallery: the existing "
        "entry is returned unchanged and nothing new is stored.",
    )


class GalleryAddPublic(BaseModel):
    added: list[AddedEntryPublic] = Field(description="One entry per stored (or existing) face.")
    rejected: list[RejectedPublic] = Field(
        description="Files that were not added: unreadable, too large, or without a face."
    )


class NothingAddedPublic(ErrorPublic):
    """``POST /gallery`` when every file was rejected: an error status, the reasons kept."""

    rejected: list[RejectedPublic] = Field(
        default_factory=list,
        description="Every file sent, with why it was not added (absent when the request as a "
        "whole was refused, e.g. too large).",
    )


class GalleryPublic(BaseModel):
    data: list[GalleryEntryPublic]
    count: int = Field(description="Entries matching the filter, over all pages.")
    offset: int
    limit: int


class GalleryEntryUpdate(BaseModel):
    """Only the fields present change; ``"label": null`` clears the label."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, min_length=1, max_length=200)
    metadata: Metadata | None = None

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_metadata(value)


class DeletedPublic(BaseModel):
    deleted: int = Field(description="How many gallery entries were removed.")


class MatchPublic(BaseModel):
    id: str
    label: str | None
    similarity: float = Field(description="Cosine similarity in [-1, 1]; higher is more alike.")
    same_person: bool | None = Field(
        description="Whether the similarity reaches the model's calibrated same-person "
        "threshold (at most 1 in 100 pairs of different people do); null for a model that "
        "was not calibrated."
    )
    source: str
    box: Box
    landmarks: Landmarks
    metadata: Metadata
    image_url: str = Field(description="The matched face's stored crop.")


class QueryFacePublic(BaseModel):
    box: Box
    landmarks: Landmarks
    score: float = Field(description="Detection score in [0, 1]; 0 when the whole image is used.")
    detected: bool = Field(description="False when no face was found and the whole image is used.")
    matches: list[MatchPublic] = Field(
        description="Best first. Empty when no gallery face reaches min_similarity: an "
        "unknown person."
    )


class TimingsPublic(BaseModel):
    decode_ms: float
    detect_ms: float
    embed_ms: float = Field(description="Includes waiting for a shared embedder batch.")
    search_ms: float
    total_ms: float


class QueryPublic(BaseModel):
    file: str = Field(description="The uploaded file's name.")
    width: int
    height: int
    face_found: bool = Field(description="Whether any face was detected.")
    faces: list[QueryFacePublic] = Field(description="Largest first, or every face (faces=all).")
    model: str = Field(description="Fingerprint of the model the vectors come from.")
    timings: TimingsPublic


class QueryBatchPublic(BaseModel):
    results: list[QueryPublic] = Field(description="One result per readable image, in order.")
    rejected: list[RejectedPublic]


class HealthPublic(BaseModel):
    status: str = "ok"


class ReadyPublic(BaseModel):
    ready: bool
    detail: str
    embedder: EmbedderState | None = Field(
        None, description=EMBEDDER_STATE + " Null when not ready."
    )


class ModelPublic(BaseModel):
    fingerprint: str
    name: str
    arch: str
    embedding_dim: int
    input_size: int
    crop_size: int = Field(
        description="The side faces are cut at before the shrink to input_size that training "
        "used (equal to input_size: no shrink)."
    )
    device: str
    precision: str
    compiled: bool = Field(
        description="Whether the embedder serving now runs through torch.compile."
    )
    metrics: dict[str, Any] = Field(description="What the checkpoint reports about itself.")
    alignment: str = Field(
        description="How the model's input crops are made: 'template' (five landmarks aligned "
        "to a template) or 'box' (a square crop around the detected box)."
    )
    thresholds: dict[str, float] = Field(
        description="Calibrated same-person cosine similarity per false-accept rate "
        "('0.01', '0.001'); empty for a model that was not calibrated."
    )
    flip_average: bool = Field(
        description="Whether each face is embedded together with its mirror image (the two "
        "vectors summed): part of the model, as its thresholds were measured so."
    )


class InfoPublic(BaseModel):
    model: ModelPublic
    embedder: EmbedderState = Field(description=EMBEDDER_STATE)
    detector: str
    index_type: str = Field(description="The FAISS index factory string, e.g. Flat.")
    index_on_gpu: bool
    gallery_size: int = Field(description="Faces in the gallery.")
    labels: int = Field(description="Distinct labels in the gallery.")
    max_upload_bytes: int
    max_files: int
