"""The crops folder's listing: what ``prepare`` writes is what ``train`` and ``teach`` read."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import FacefindError
from training.crop_files import (
    CROPS_CSV,
    CropRow,
    identity_tree,
    list_crops,
    read_listing,
    write_listing,
)


def test_a_listing_reads_back_as_written(tmp_path: Path) -> None:
    rows = [
        CropRow("ann/1.jpg", "ann", "/photos/ann/1.jpg", True, (3, 4, 50, 60)),
        CropRow("bob/2.jpg", "bob", "/photos/bob/2.jpg", False, (0, 0, 80, 80)),
    ]
    with write_listing(tmp_path) as listing:
        for row in rows:
            listing.add(row)
    assert read_listing(tmp_path) == rows
    assert list_crops(tmp_path) == rows


def test_an_old_listing_without_face_found_counts_every_face(tmp_path: Path) -> None:
    (tmp_path / CROPS_CSV).write_text("crop,identity\nann/1.jpg,ann\n")
    assert read_listing(tmp_path) == [CropRow("ann/1.jpg", "ann")]


def test_a_folder_per_identity_tree_needs_no_listing(tmp_path: Path) -> None:
    for rel in ("bob/b.png", "ann/a.jpg", "ann/notes.txt"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert read_listing(tmp_path) is None
    assert list_crops(tmp_path) == identity_tree(tmp_path)
    assert [(r.crop, r.identity) for r in identity_tree(tmp_path)] == [
        ("ann/a.jpg", "ann"),
        ("bob/b.png", "bob"),
    ]


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FacefindError, match="training data folder not found"):
        list_crops(tmp_path / "nowhere")
