"""Persons of a real gallery: incremental and full grouping, user corrections, the CLI.

Galleries are real ``GalleryStore`` SQLite files; their vectors are placed around known
centres so that who belongs with whom is known. The CLI test indexes five-celebrity photos
with the indexer itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer.cli import main
from indexer.people_cluster import group_faces
from indexer.people_store import PeopleStore
from indexer.records import NewFace
from indexer.store import DB_NAME, GalleryStore

DIM = 32


@pytest.fixture
def centres() -> np.ndarray:
    rng = np.random.default_rng(0)
    c = rng.normal(size=(6, DIM))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def add(index: Path, centre: np.ndarray, n: int, name: str, label: str | None = None) -> list[str]:
    """n faces of one person, stored the way the indexer stores faces."""
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    vectors = centre + 0.04 * rng.normal(size=(n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    faces = [
        NewFace(v.astype(np.float32), f"{name}/{i}.jpg", f"{name}-{i}", (0, 0, 9, 9), 1.0, True)
        for i, v in enumerate(vectors)
    ]
    for face in faces:
        face.label = label
    with GalleryStore(index, "test-model", DIM) as store:
        return [r.id for r in store.add(faces)]


def membership(index: Path) -> dict[int, set[str]]:
    people = PeopleStore(index / DB_NAME)
    return {p.id: set(people.face_ids(p.id)) for p in people.people(0, 100)[0]}


def test_faces_are_grouped_and_strays_wait(tmp_path: Path, centres: np.ndarray) -> None:
    a, b = add(tmp_path, centres[0], 6, "a"), add(tmp_path, centres[1], 4, "b")
    few = add(tmp_path, centres[2], 2, "c")
    summary = group_faces(tmp_path / DB_NAME, threshold=0.6, min_faces=3)
    assert sorted(map(sorted, membership(tmp_path).values())) == sorted([sorted(a), sorted(b)])
    assert (summary.persons, summary.assigned, summary.unassigned) == (2, 10, 2)
    people, count, unassigned = PeopleStore(tmp_path / DB_NAME).people()
    assert (count, unassigned) == (2, 2)
    assert [p.faces for p in people] == [6, 4]
    assert people[0].cover in a and not set(few) & set().union(*membership(tmp_path).values())


def test_new_faces_join_their_person_or_wait_for_company(
    tmp_path: Path, centres: np.ndarray
) -> None:
    a = add(tmp_path, centres[0], 5, "a")
    group_faces(tmp_path / DB_NAME, 0.6, 3)
    (person,) = membership(tmp_path)
    more_a = add(tmp_path, centres[0], 2, "a2")
    d = add(tmp_path, centres[3], 2, "d")
    summary = group_faces(tmp_path / DB_NAME, 0.6, 3)
    assert membership(tmp_path) == {person: set(a + more_a)}
    assert (summary.joined, summary.new_persons, summary.unassigned) == (2, 0, 2)
    d += add(tmp_path, centres[3], 1, "d3")
    summary = group_faces(tmp_path / DB_NAME, 0.6, 3)
    groups = membership(tmp_path)
    assert groups[person] == set(a + more_a) and set(d) in groups.values()
    assert (summary.new_persons, summary.unassigned) == (1, 0)


def test_labelled_faces_name_their_person_and_pull_faces_in(
    tmp_path: Path, centres: np.ndarray
) -> None:
    ann = add(tmp_path, centres[0], 1, "ann", label="Ann")
    rest = add(tmp_path, centres[0], 4, "ann-unlabelled")
    lone = add(tmp_path, centres[1], 1, "bob", label="Bob")
    group_faces(tmp_path / DB_NAME, 0.6, 3)
    people = {p.label: p for p in PeopleStore(tmp_path / DB_NAME).people()[0]}
    assert set(people) == {"Ann", "Bob"}
    assert membership(tmp_path)[people["Ann"].id] == set(ann + rest)
    assert membership(tmp_path)[people["Bob"].id] == set(lone)
    later = add(tmp_path, centres[4], 1, "ann-elsewhere", label="Ann")
    group_faces(tmp_path / DB_NAME, 0.6, 3)
    assert set(later) <= membership(tmp_path)[people["Ann"].id]  # joined by name


def test_full_run_keeps_ids_names_and_moved_out_faces(tmp_path: Path, centres: np.ndarray) -> None:
    a, b = add(tmp_path, centres[0], 5, "a"), add(tmp_path, centres[1], 5, "b")
    group_faces(tmp_path / DB_NAME, 0.6, 3)
    store = PeopleStore(tmp_path / DB_NAME)
    ids = {frozenset(v): k for k, v in membership(tmp_path).items()}
    pa, pb = ids[frozenset(a)], ids[frozenset(b)]
    assert store.set_label(pa, "Ann")
    assert store.move_out(pa, a[0]) and not store.move_out(pa, a[0])
    summary = group_faces(tmp_path / DB_NAME, 0.6, 3, full=True)
    assert summary.full and summary.unassigned == 1
    assert membership(tmp_path) == {pa: set(a[1:]), pb: set(b)}
    assert store.person(pa).label == "Ann"  # type: ignore[union-attr]
    assert sorted(store.merge(pa, pb)) == sorted(b)
    assert membership(tmp_path) == {pa: set(a[1:] + b)} and store.person(pb) is None


def test_faces_deleted_from_the_gallery_leave_their_person(
    tmp_path: Path, centres: np.ndarray
) -> None:
    a = add(tmp_path, centres[0], 4, "a")
    group_faces(tmp_path / DB_NAME, 0.6, 3)
    with GalleryStore(tmp_path) as store:
        store.remove(a[:2])
    assert [p.faces for p in PeopleStore(tmp_path / DB_NAME).people()[0]] == [2]
    summary = group_faces(tmp_path / DB_NAME, 0.6, 3)
    assert (summary.faces, summary.assigned) == (2, 2)


def test_cluster_command_on_indexed_photos(
    tmp_path: Path, shared_data: Path, model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gallery = tmp_path / "photos"  # one folder: no labels, as most photo archives
    gallery.mkdir()
    for person in ("madonna", "elton_john"):
        for photo in sorted((shared_data / "five-celebrity" / person).iterdir())[:6]:
            shutil.copy(photo, gallery / f"{person}-{photo.name}")
    index = tmp_path / "index"
    build = ["build", str(gallery), "--index", str(index), "--model", str(model_path)]
    assert main([*build, "--workers", "1", "--detector", "haar"]) == 0
    faces = GalleryStore(index).count()
    capsys.readouterr()

    # No two photos reach cosine 1: every face is a person of its own, or none with two.
    assert main(["cluster", "--index", str(index), "--threshold", "1", "--min-faces", "2"]) == 0
    out = capsys.readouterr()
    assert f"0 persons (0 new) over 0 of {faces} faces; {faces} unassigned" in out.out
    assert "given by --threshold" in out.err
    cmd = ["cluster", "--index", str(index), "--full", "--min-faces", "1", "--model"]
    assert main([*cmd, str(model_path)]) == 0
    out = capsys.readouterr()
    assert f"over {faces} of {faces} faces; 0 unassigned" in out.out
    assert "carries no calibrated threshold" in out.err and "graph" in out.err
    people, _, unassigned = PeopleStore(index / DB_NAME).people()
    assert sum(p.faces for p in people) == faces and unassigned == 0
    assert main(["cluster", "--index", str(tmp_path / "none")]) == 2
    assert main(["cluster", "--index", str(index), "--min-faces", "0"]) == 2
