"""The crops folder ``python -m training prepare`` writes and ``train``/``teach`` read.

``CROPS/<identity>/*.jpg`` plus ``crops.csv``: for every crop its identity, the photo it was
cut from, whether a face was detected there (or the whole photo stood in, as serving does)
and the box. A plain folder-per-identity tree of crops is read as well.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indexer.decode import IMAGE_SUFFIXES
from indexer.errors import FacefindError

CROPS_CSV = "crops.csv"
COLUMNS = ("crop", "identity", "source", "face_found", "x", "y", "w", "h")


@dataclass(frozen=True)
class CropRow:
    crop: str
    """Path relative to the crops folder, with forward slashes."""
    identity: str
    source: str = ""
    face_found: bool = True
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


class CropWriter:
    def __init__(self, writer: csv.DictWriter[str]) -> None:
        self._writer = writer

    def add(self, row: CropRow) -> None:
        x, y, w, h = row.box
        self._writer.writerow({"crop": row.crop, "identity": row.identity,
                               "source": row.source, "face_found": int(row.face_found),
                               "x": x, "y": y, "w": w, "h": h})  # fmt: skip


@contextmanager
def write_listing(folder: Path) -> Iterator[CropWriter]:
    with (folder / CROPS_CSV).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        yield CropWriter(writer)


def read_listing(folder: Path) -> list[CropRow] | None:
    """The folder's ``crops.csv``, or None where it has none (a folder-per-identity tree).

    Listings older than the ``face_found`` column count every crop as a found face."""
    listing = folder / CROPS_CSV
    if not listing.is_file():
        return None
    with listing.open(newline="") as fh:
        return [_row(r) for r in csv.DictReader(fh)]


def list_crops(folder: Path) -> list[CropRow]:
    """A crops folder's rows: its ``crops.csv``, or, without one, its identity tree."""
    if not folder.is_dir():
        raise FacefindError(f"training data folder not found: {folder}")
    rows = read_listing(folder)
    return identity_tree(folder) if rows is None else rows


def identity_tree(folder: Path) -> list[CropRow]:
    """Every image of a folder-per-identity tree, sorted."""
    return [
        CropRow(path.relative_to(folder).as_posix(), person.name)
        for person in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(person.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def _row(r: dict[str, str]) -> CropRow:
    x, y, w, h = (int(r.get(key) or 0) for key in ("x", "y", "w", "h"))
    face_found = r.get("face_found", "1") != "0"
    return CropRow(r["crop"], r["identity"], r.get("source") or "", face_found, (x, y, w, h))
