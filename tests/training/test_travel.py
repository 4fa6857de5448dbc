"""Travel files (``python -m training travel``): one small file of JPEG crops and targets."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.align import BOX
from indexer.errors import FacefindError
from training.cli import main
from training.pack_files import PackMeta, Shard, shard_name
from training.travel import load_travel, write_travel

SIZE = 32


@pytest.fixture
def pack_dir(tmp_path: Path, shared_data: Path) -> Path:
    """A one-shard pack of six real photos shrunk to crops, with unit-length targets."""
    photos = sorted((shared_data / "five-celebrity" / "madonna").iterdir())[:6]
    crops = np.stack([
        cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (SIZE, SIZE))
        for p in photos
    ])  # fmt: skip
    targets = np.random.default_rng(0).normal(size=(len(photos), 2, 8))
    targets /= np.linalg.norm(targets, axis=-1, keepdims=True)
    folder = tmp_path / "pack"
    folder.mkdir()
    meta = PackMeta(SIZE, BOX.to_dict(), "test", ["as-is", "mirrored"], ["madonna"], len(photos))
    meta.save(folder)
    Shard(crops, targets.astype(np.float16), np.array(["madonna"] * len(photos)),
          np.array([str(p) for p in photos])).save(folder / shard_name(0))  # fmt: skip
    return folder


def test_a_damaged_crop_in_a_travel_file_is_a_clear_error(pack_dir: Path, tmp_path: Path) -> None:
    travel = tmp_path / "travel.npz"
    write_travel([pack_dir], travel, max_mib=1.0, size=SIZE)
    assert load_travel(travel).crops.shape == (6, SIZE, SIZE, 3)
    with np.load(travel) as data:
        arrays = dict(data)
    first_end = int(arrays["ends"][0])
    arrays["jpeg"][first_end : first_end + 64] = 0  # the second crop's JPEG header is gone
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    travel.write_bytes(buffer.getvalue())
    with pytest.raises(FacefindError, match=r"face 1 is not a readable JPEG"):
        load_travel(travel)


@pytest.mark.parametrize(("flag", "value", "says"), [("--quality", "0", "JPEG quality"),
                                                     ("--size", "8", "at least 16 px")])  # fmt: skip
def test_a_bad_travel_setting_is_one_line_and_a_non_zero_exit(
    pack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
    says: str
) -> None:  # fmt: skip
    out = tmp_path / "travel.npz"
    assert main(["travel", str(pack_dir), "--out", str(out), flag, value]) != 0
    assert says in capsys.readouterr().err and not out.exists()
