"""The ``python -m indexer`` commands on real photos with a real (random-weight) model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexer import defaults
from indexer.cli import main
from indexer.store import INDEX_NAME, GalleryStore


def _build(gallery: Path, index: Path, model: Path, *extra: str) -> int:
    return main(
        [
            "build",
            str(gallery),
            "--index",
            str(index),
            "--model",
            str(model),
            "--workers",
            "1",
            *extra,
        ]
    )


def _count(index: Path) -> int:
    with GalleryStore(index) as store:
        return store.count()


def test_build_is_incremental(gallery_dir: Path, tmp_path: Path, model_path: Path, capsys) -> None:
    index = tmp_path / "index"
    assert _build(gallery_dir, index, model_path) == 0
    first = capsys.readouterr().out
    assert "images found: 93; indexed now: 93" in first
    assert _count(index) == 93
    with GalleryStore(index) as store:
        assert {label for label, _ in store.labels()} == {p.name for p in gallery_dir.iterdir()}

    assert _build(gallery_dir, index, model_path) == 0
    assert "indexed now: 0 (0 faces); unchanged: 93" in capsys.readouterr().out

    person = gallery_dir / "madonna"
    victim, changed = sorted(person.iterdir())[:2]
    victim.unlink()
    shutil.copy(
        gallery_dir
        / "elton_john"
        / sorted(p.name for p in (gallery_dir / "elton_john").iterdir())[0],
        changed,
    )
    assert _build(gallery_dir, index, model_path) == 0
    out = capsys.readouterr().out
    assert "indexed now: 1 (1 faces); unchanged: 91; removed (deleted or changed): 2" in out
    assert _count(index) == 92
    with GalleryStore(index) as store:
        sources = {r.source for r in store.list(0, 1000)[0]}
    assert str(victim.resolve()) not in sources and str(changed.resolve()) in sources


def test_unreadable_files_are_reported_and_do_not_stop_the_build(
    gallery_dir: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    (gallery_dir / "madonna" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0not really a jpeg")
    (gallery_dir / "notes.txt").write_text("not an image, not even looked at")
    assert _build(gallery_dir, tmp_path / "index", model_path) == 0
    out = capsys.readouterr().out
    assert "files that could not be read: 1" in out and "broken.jpg" in out
    assert _count(tmp_path / "index") == 93


def test_parallel_workers_give_the_same_gallery(
    shared_data: Path, tmp_path: Path, model_path: Path
) -> None:
    gallery = tmp_path / "orl"
    for person in ("s1", "s2", "s3"):
        shutil.copytree(shared_data / "orl" / person, gallery / person)
    assert (
        main(
            [
                "build",
                str(gallery),
                "--index",
                str(tmp_path / "i"),
                "--model",
                str(model_path),
                "--workers",
                "2",
                "--detector",
                "none",
            ]
        )
        == 0
    )
    assert _count(tmp_path / "i") == 30


def test_search_json_and_challenge_format(
    gallery_dir: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    index = tmp_path / "index"
    _build(gallery_dir, index, model_path)
    capsys.readouterr()
    query = sorted((gallery_dir / "madonna").iterdir())[0]
    assert (
        main(["search", str(query), "--index", str(index), "--model", str(model_path), "-k", "3"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)["results"][0]
    best = result["faces"][0]["matches"][0]
    assert len(result["faces"][0]["matches"]) == 3
    assert best["source"] == str(query.resolve()) and best["label"] == "madonna"
    assert best["similarity"] == pytest.approx(1.0, abs=1e-3)

    assert (
        main(
            [
                "search",
                str(gallery_dir / "madonna"),
                "--index",
                str(index),
                "--model",
                str(model_path),
                "-k",
                "5",
                "--format",
                "challenge",
            ]
        )
        == 0
    )
    images = json.loads(capsys.readouterr().out)["images"]
    assert len(images) == len(list((gallery_dir / "madonna").iterdir()))
    assert all(len(v) == 5 and isinstance(v[0], str) for v in images.values())
    assert images[query.name][0] == query.name


def test_info_describes_the_store(
    gallery_dir: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    _build(gallery_dir, tmp_path / "index", model_path)
    capsys.readouterr()
    assert main(["info", "--index", str(tmp_path / "index")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["faces"] == 93 and info["labels"] == 5 and info["index_type"] == "Flat"
    assert info["embedding_dim"] == 128 and info["device"] == "cpu"


def test_corrupt_index_file_is_rebuilt_on_the_next_run(
    gallery_dir: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    index = tmp_path / "index"
    _build(gallery_dir, index, model_path)
    (index / INDEX_NAME).write_bytes(b"\0" * 64)
    query = sorted((gallery_dir / "mindy_kaling").iterdir())[0]
    capsys.readouterr()
    assert main(["search", str(query), "--index", str(index), "--model", str(model_path)]) == 0
    best = json.loads(capsys.readouterr().out)["results"][0]["faces"][0]["matches"][0]
    assert best["source"] == str(query.resolve())


def test_another_model_is_refused(
    gallery_dir: Path, tmp_path: Path, model_path: Path, other_model_path: Path, capsys
) -> None:
    _build(gallery_dir, tmp_path / "index", model_path)
    capsys.readouterr()
    assert _build(gallery_dir, tmp_path / "index", other_model_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the gallery in") and "was built with model" in err


def test_evaluate_prints_the_protocol_figures(
    shared_data: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    out_json = tmp_path / "figures.json"
    manifest = shared_data.parent / "benchmarks" / "five-celebrity.csv"
    assert (
        main(
            [
                "evaluate",
                str(manifest),
                "--root",
                str(shared_data / "five-celebrity"),
                "--model",
                str(model_path),
                "--workers",
                "1",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for key in ("top1", "top5", "top10", "mAP", "face_found", "s/image"):
        assert key in printed
    figures = json.loads(out_json.read_text())
    assert figures["queries"] == 25 and figures["gallery"] == 68
    assert 0.0 <= figures["top1"] <= figures["top5"] <= figures["top10"] <= 1.0


def test_evaluate_refuses_a_manifest_without_the_columns(
    tmp_path: Path, model_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,person\na.jpg,x\n")
    assert main(["evaluate", str(bad), "--root", str(tmp_path), "--model", str(model_path)]) == 2
    assert "missing column(s) identity, path, role" in capsys.readouterr().err


def test_without_a_model_the_cli_says_how_to_get_one(
    gallery_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(defaults, "DEFAULT_MODEL", tmp_path / "not-installed.pt")
    monkeypatch.delenv("FACEFIND_MODEL", raising=False)
    assert main(["build", str(gallery_dir), "--index", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert "no model given" in err and "--model PATH" in err and "python -m training train" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "/no/such/folder", "--index", "/tmp/x"], "gallery folder not found"),
        (["search", "q.jpg", "--index", "/no/such/index"], "no gallery store in"),
        (["info", "--index", "/no/such/index"], "no gallery store in"),
    ],
)
def test_bad_paths_give_one_line_errors(args: list[str], message: str, model_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "indexer",
            *args,
            *(["--model", str(model_path)] if args[0] != "info" else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_yunet_without_its_model_file_is_a_one_line_error(
    gallery_dir: Path, tmp_path: Path, model_path: Path, capsys
) -> None:
    missing = tmp_path / "yunet.onnx"
    args = ("--detector", "yunet", "--detector-model", str(missing))
    assert _build(gallery_dir, tmp_path / "i", model_path, *args) == 2
    err = capsys.readouterr().err
    assert (
        "YuNet model file not found" in err and str(missing) in err and len(err.splitlines()) == 1
    )
