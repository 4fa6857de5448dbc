""".dockerignore: what goes into the build context, matched the way Docker matches it.

Docker excludes a path when the last pattern matching it or one of its parent folders is not
an exception (``!``); ``*`` stays within one path segment, ``**`` spans any number of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docker_files import ROOT, Dockerfile

Pattern = tuple[bool, re.Pattern[str]]


def translate(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over slash-separated relative paths."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out, i = out + "(?:.*/)?", i + 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out)


def read_patterns(path: Path) -> list[Pattern]:
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        patterns.append((negate, translate(pattern.strip("/"))))
    return patterns


def in_context(path: str, patterns: list[Pattern]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return not excluded


@pytest.fixture(scope="module")
def patterns() -> list[Pattern]:
    return read_patterns(ROOT / ".dockerignore")


def test_matcher_follows_docker_rules() -> None:
    rules = [(False, translate("*")), (True, translate("keep")), (False, translate("**/*.pyc"))]
    assert in_context("keep/a/b.py", rules)
    assert not in_context("keep/a/b.pyc", rules)
    assert not in_context("other/b.py", rules)
    assert not in_context("top.py", rules)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "venv/lib/site.py",
        ".git/HEAD",
        ".env",
        "data/gallery.sqlite",
        "runs/exp1/checkpoint.pt",
        "gallery/ben_afflek/1.jpg",
        "crops/a.jpg",
        "tests/conftest.py",
        "benchmarks/results.json",
        "docs/notes.md",
        "models/another-checkpoint.pt",
        "models/runs/epoch3.pt",
        "indexer/__pycache__/cli.cpython-311.pyc",
        "service/api/__pycache__/deps.cpython-311.pyc",
        "facefind.egg-info/PKG-INFO",
        ".ruff_cache/content",
        ".pytest_cache/v/cache",
        "docker-compose.yml",
        "docker/Dockerfile",
    ],
)
def test_data_runs_venvs_caches_and_secrets_stay_out(path: str, patterns: list[Pattern]) -> None:
    assert not in_context(path, patterns)


def test_everything_the_images_copy_is_in_the_context(
    patterns: list[Pattern], dockerfiles: dict[str, Dockerfile]
) -> None:
    """Each COPY source, and every file of a copied package (models/ is filtered on purpose)."""
    for image in dockerfiles.values():
        for flags, sources, _ in image.copies():
            if any(f.startswith("--from") for f in flags):
                continue
            for source in sources:
                assert in_context(source.rstrip("/"), patterns), source
                if source != "models/":
                    for relative in package_files(ROOT / source):
                        assert in_context(relative, patterns), relative


def package_files(folder: Path) -> list[str]:
    """Files below ``folder`` (none for a file), caches left out, relative to the root."""
    if not folder.is_dir():
        return []
    return [
        file.relative_to(ROOT).as_posix()
        for file in folder.rglob("*")
        if file.is_file() and "__pycache__" not in file.parts
    ]


@pytest.mark.parametrize("path", ["models/facefind-resnet50.pt", "models/README.md", "models"])
def test_only_the_shipped_model_goes_in_from_models(path: str, patterns: list[Pattern]) -> None:
    assert in_context(path, patterns)


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("docker/local/README.md", True),
        ("docker/local/torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl", True),
        ("docker/local/torchvision-0.29.1-cp311-cp311-manylinux_2_28_x86_64.whl", True),
        ("docker/local/face_detection_yunet.onnx", True),
        ("docker/local/other-model.onnx", False),
        ("docker/local/notes.txt", False),
        ("docker/e2e_figures.py", False),
    ],
)
def test_offline_build_inputs_and_nothing_else_of_docker_local(
    path: str, sent: bool, patterns: list[Pattern]
) -> None:
    """docker/local/ (bind-mounted by RUN --mount) carries only what offline builds take."""
    assert in_context(path, patterns) is sent
