from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import pytest

from indexer.errors import FacefindError
from training.cli import main
from training.data import read_crops
from training.prepare import prepare
from training.split import split_identities

CROP_SIZE = 48


def test_folder_layout_gives_one_crop_per_photo_and_records_missed_faces(crops_dir: Path) -> None:
    with (crops_dir / "crops.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 93
    assert {r["identity"] for r in rows} == {
        "ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"
    }  # fmt: skip
    found = [r["face_found"] == "1" for r in rows]
    assert 0 < sum(found) < len(found), "some photos have a face, Haar misses some"
    crop = cv2.imread(str(crops_dir / rows[0]["crop"]))
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    assert len(read_crops(crops_dir)) == 93


def test_celeba_layout_is_read(tmp_path: Path, shared_data: Path) -> None:
    src = tmp_path / "celeba"
    images = src / "img_align_celeba"
    images.mkdir(parents=True)
    lines = []
    people = sorted(p for p in (shared_data / "celeba-aligned").iterdir() if p.is_dir())[:2]
    number = 0
    for person in people:
        for photo in sorted(person.iterdir())[:2]:
            number += 1
            shutil.copy(photo, images / f"{number:06d}.jpg")
            lines.append(f"{number:06d}.jpg {person.name}")
    (src / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "crops"
    report = prepare(src, out, "none", None, 32, workers=1)
    assert report.images == number and not report.unreadable
    samples = read_crops(out)
    assert sorted({s.identity for s in samples}) == sorted(p.name for p in people)
    assert all(s.path.is_file() for s in samples)


def test_celeba_labels_naming_missing_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    with pytest.raises(FacefindError, match=r"000001\.jpg"):
        prepare(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_bad_source_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    src = tmp_path / "src"
    if kind == "empty":
        src.mkdir()
    assert main(["prepare", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(src) in err


def test_split_is_identity_disjoint_and_fixed_by_the_seed(crops_dir: Path) -> None:
    samples = read_crops(crops_dir)
    train, val = split_identities(samples, 0.4, seed=3)
    assert {s.identity for s in train}.isdisjoint({s.identity for s, _ in val})
    assert len(train) + len(val) == len(samples)
    assert {role for _, role in val} == {"query", "gallery"}
    again, _ = split_identities(samples, 0.4, seed=3)
    assert [s.path for s in again] == [s.path for s in train]
