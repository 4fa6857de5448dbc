"""docker/indexer_entrypoint.py: `python -m indexer` writing to the container's store."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from docker_files import ROOT

from indexer.cli import build_parser
from indexer.store import DB_NAME, GalleryStore

SCRIPT = ROOT / "docker" / "indexer_entrypoint.py"


def commands_with_index() -> set[str]:
    """Sub-commands of the real indexer CLI that have an --index option."""
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {
        name
        for name, sub in subparsers.choices.items()
        if any("--index" in action.option_strings for action in sub._actions)
    }


def run_entrypoint(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFIND_")}
    env |= {"FACEFIND_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_knows_every_command_that_takes_index(indexer_entrypoint: ModuleType) -> None:
    assert set(indexer_entrypoint.INDEX_COMMANDS) == commands_with_index()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build", "/gallery"], ["build", "/gallery", "--index", "/data"]),
        (["info"], ["info", "--index", "/data"]),
        (["search", "q.jpg", "-k", "3"], ["search", "q.jpg", "-k", "3", "--index", "/data"]),
        (["build", "/g", "--index", "/other"], ["build", "/g", "--index", "/other"]),
        (["build", "/g", "--index=/other"], ["build", "/g", "--index=/other"]),
        (["build", "--", "-odd-name"], ["build", "--index", "/data", "--", "-odd-name"]),
        (["evaluate", "m.csv", "--root", "/r"], ["evaluate", "m.csv", "--root", "/r"]),
        ([], []),
        (["--help"], ["--help"]),
    ],
)
def test_adds_the_store_only_where_needed(
    argv: list[str], expected: list[str], indexer_entrypoint: ModuleType
) -> None:
    assert indexer_entrypoint.with_default_index(argv, "/data") == expected


def test_every_rewritten_command_parses(indexer_entrypoint: ModuleType) -> None:
    for argv in (["build", "/gallery"], ["info"], ["search", "q.jpg"]):
        args = build_parser().parse_args(indexer_entrypoint.with_default_index(argv, "/data"))
        assert args.index == Path("/data")


def test_runs_the_real_cli_against_the_data_dir(tmp_path: Path) -> None:
    """`docker compose run --rm indexer info` before anything was indexed."""
    data_dir = tmp_path / "data"
    result = run_entrypoint(data_dir, "info")
    assert result.returncode == 2
    assert f"no gallery store in {data_dir}" in result.stderr


def test_build_indexes_a_gallery_into_the_data_dir(
    tmp_path: Path, shared_data: Path, model_path: Path
) -> None:
    """`docker compose run --rm indexer build /gallery`, minus Docker: two photos, no detector."""
    gallery = tmp_path / "gallery"
    for person in ("ben_afflek", "madonna"):
        source = next((shared_data / "five-celebrity" / person).iterdir())
        (gallery / person).mkdir(parents=True)
        shutil.copy(source, gallery / person / source.name)
    data_dir = tmp_path / "data"
    flags = ["--model", str(model_path), "--detector", "none", "--workers", "1"]
    result = run_entrypoint(data_dir, "build", str(gallery), *flags)
    assert result.returncode == 0, result.stderr
    assert (data_dir / DB_NAME).is_file()
    with GalleryStore(data_dir) as store:
        assert store.count() == 2
