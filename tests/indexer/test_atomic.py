from __future__ import annotations

from pathlib import Path

import pytest

from indexer.atomic import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "note.json"
    atomic_write_text(target, "one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and _leftovers(target.parent) == []


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_path_writer_gets_a_hidden_temp_name_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "index.faiss"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".index.faiss.")
        assert tmp.name.endswith(".tmp") and not target.exists()
        tmp.write_bytes(b"faiss")
    assert target.read_bytes() == b"faiss" and not tmp.exists()
