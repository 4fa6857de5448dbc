"""The gallery database seam: what ``GalleryStore`` needs from its source of truth.

SQLite (``indexer.sqlite_db``, the embedded default) and PostgreSQL (``indexer.postgres_db``,
shared by several service replicas) implement it, so the methods speak in faces, labels and
files, never in SQL. Every method that writes is one transaction: when it returns, the change is durable, and
when it raises, nothing of it was stored. Implementations need not be thread-safe: the store
serialises calls under its lock.

Row ids are the database's own, positive and increasing: FAISS uses them as vector ids, and
the index file notes the largest one it holds, so that rows added after it can be caught up.
Every removal bumps ``removals()``: an index file saved before a removal is stale.

Every write also appends to a change log in its own transaction (``changes_after``): one
entry per face added, updated or removed, numbered by a sequence that grows in commit order
(writers are serialised), which is how a process follows what other processes write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from indexer.errors import ModelMismatch
from indexer.records import FaceRecord, NewFace

FileState = tuple[int, int, str]
"""(size, mtime_ns, content hash) of a file a build indexed."""

SCHEMA_VERSION = 3
"""The schema this code reads and writes; older databases are migrated when opened.
2 added landmarks, 3 the change log."""

ChangeOp = Literal["add", "update", "remove"]


class Change(NamedTuple):
    """One entry of the change log: ``seq`` grows in commit order."""

    seq: int
    op: ChangeOp
    rowid: int
    id: str


class GalleryDatabase(Protocol):
    """Faces, crops, indexed files and the gallery's model binding."""

    location: str
    """Where the database lives, for messages (a file path, a server address)."""

    def close(self) -> None: ...

    def schema_version(self) -> int:
        """The version of the schema in the database (SCHEMA_VERSION once opened)."""
        ...

    def model_binding(self) -> tuple[str | None, int | None]:
        """(model fingerprint, embedding size) the gallery was built with; None when new."""
        ...

    def bind_model(self, model: str, dim: int) -> None:
        """Record the model of a new gallery; later vectors must come from it."""
        ...

    def insert(
        self,
        faces: Sequence[NewFace],
        files: Iterable[tuple[str, int, int, str]],
        model: str,
        now: float,
    ) -> list[tuple[int, FaceRecord]]:
        """Store faces and build file states; (row id, record) per face. Raises Conflict."""
        ...

    def remove_ids(self, ids: Sequence[str]) -> list[int]:
        """Delete faces by id; returns the row ids removed."""
        ...

    def remove_label(self, label: str) -> list[int]:
        """Delete every face with this label; returns the row ids removed."""
        ...

    def remove_sources(self, sources: Sequence[str]) -> list[int]:
        """Delete the faces and file states of these source files; returns row ids removed."""
        ...

    def update(self, id: str, label: str | None, metadata: dict[str, Any]) -> FaceRecord | None:
        """Set a face's label and metadata; None when no face has this id."""
        ...

    def get(self, id: str) -> FaceRecord | None: ...

    def by_rowids(self, rowids: Sequence[int]) -> dict[int, FaceRecord]:
        """The faces with these row ids (missing ones left out), for search results."""
        ...

    def crop(self, id: str) -> bytes | None: ...

    def page(self, offset: int, limit: int, label: str | None) -> tuple[list[FaceRecord], int]:
        """Faces in insertion order, and how many there are in all."""
        ...

    def find_by_hash(self, content_hash: str) -> list[FaceRecord]: ...

    def count(self, label: str | None = None) -> int: ...

    def count_upto(self, rowid: int) -> int:
        """How many faces have a row id up to this one."""
        ...

    def max_rowid(self) -> int:
        """The largest row id stored; 0 when empty."""
        ...

    def removals(self) -> int:
        """How many removals the gallery has seen."""
        ...

    def labels(self) -> list[tuple[str, int]]:
        """(label, face count), by label."""
        ...

    def file_states(self) -> dict[str, FileState]: ...

    def vectors(self, after: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``limit`` (row ids, float32 vectors) with row ids above ``after``, in order."""
        ...

    def last_change(self) -> int:
        """The sequence number of the latest change; 0 when there is none."""
        ...

    def changes_after(self, seq: int, limit: int) -> list[Change]:
        """Up to ``limit`` changes with a sequence number above ``seq``, in order."""
        ...


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL gallery (else SQLite in the store directory)."""
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def bind_model(
    db: GalleryDatabase, model: str | None, dim: int | None, where: object
) -> tuple[str | None, int | None]:
    """The gallery's (model, embedding size): a new gallery takes the caller's, an old one
    keeps its own and refuses another model, whose vectors would compare as garbage."""
    stored, stored_dim = db.model_binding()
    if stored is not None and model is not None and stored != model:
        check_space(stored, model)
        raise ModelMismatch(
            f"the gallery in {where} was built with model {stored}, not "
            f"{model}: searching it with another model gives meaningless results. Use the same "
            "--model, or index into a new --index directory."
        )
    if stored is None and model is not None:
        if dim is None:
            raise ValueError("a new gallery needs the embedding size of its model")
        db.bind_model(model, dim)
        return model, dim
    return stored, stored_dim if stored_dim is not None else dim


def check_space(store_model: str | None, space: str) -> None:
    """A clear sentence before the store's generic refusal, when only the crops differ."""
    if not store_model or store_model == space:
        return
    base, _, crops = store_model.partition(":")
    if base == space.partition(":")[0]:
        made, now = (crops or "aligned"), (space.partition(":")[2] or "aligned")
        raise ModelMismatch(
            f"this gallery holds vectors of {made} faces and these would be of {now} faces "
            f"(same model, other crops): use the detector the gallery was built with "
            f"({'yunet' if made == 'aligned' else 'haar'}), or rebuild it into a new --index"
        )
