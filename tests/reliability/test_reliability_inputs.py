"""The bad-input corpus against every upload route of a real server and against the CLI.

Each file of ``reliability_inputs.image_cases`` goes to ``POST /query``, ``POST /query/batch``,
``POST /gallery`` alone and beside a good photo; each of ``request_cases`` is sent as it is.
Every answer must be the documented status with a JSON sentence (a bad file in a multi-file
request is listed under ``rejected`` with its status, the request itself is 200), and after
each case the server must still answer a good query, have counted no 5xx and logged no
traceback. The CLI gets the same files: one error line each, never a traceback.
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from reliability_inputs import (
    MAX_FILES,
    REQUEST_LIMIT,
    UPLOAD_LIMIT,
    ImageCase,
    RequestCase,
    encode,
    image_cases,
    multipart,
    request_cases,
    unique,
)
from reliability_testing import (
    assert_clean_log,
    assert_error,
    report,
    send,
    server_errors,
)
from service_process import REPO, ServiceProcess

from indexer.cli import main as indexer_main

SHARED = REPO.parent / "shared"
FACE = sorted((SHARED / "data" / "five-celebrity" / "madonna").glob("*.jpg"))
PGM = SHARED / "data" / "orl" / "s1" / "1.pgm"
IMAGE_CASES = image_cases(FACE[0], PGM)
DOT = encode(Image.new("RGB", (1, 1), (0, 0, 0)), "PNG")
REQUEST_CASES = request_cases(FACE[1].read_bytes(), FACE[2].read_bytes(), DOT)
GOOD = FACE[3].read_bytes()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, yunet_model: Path
) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("inputs")
    env = {
        "FACEFIND_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "FACEFIND_MAX_REQUEST_BYTES": str(REQUEST_LIMIT),
        "FACEFIND_MAX_FILES": str(MAX_FILES),
    }
    with ServiceProcess(root / "data", model_path, yunet_model, root / "log", env) as service:
        yield service


@pytest.fixture(scope="module")
def http(server: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def post_files(
    http: httpx.Client, path: str, parts: list[tuple[str, ImageCase | bytes]]
) -> httpx.Response:
    """A multipart request built by hand, so that odd names and missing types go out as is."""
    raw = [
        (field, "good.jpg", "image/jpeg", item)
        if isinstance(item, bytes)
        else (field, item.filename, item.content_type, item.data)
        for field, item in parts
    ]
    body, content_type = multipart(raw)
    return http.post(path, content=body, headers={"content-type": content_type})


def assert_still_serving(http: httpx.Client, server: ServiceProcess) -> None:
    answer = http.post("/query", files={"image": ("good.jpg", GOOD, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["face_found"] is True
    assert server_errors(http) == {}
    assert_clean_log(server.text())


def check_rejected(entries: list[dict[str, Any]], case: ImageCase, status: int) -> None:
    assert len(entries) == 1, entries
    assert entries[0]["file"] == case.reported_name
    assert entries[0]["status"] == status
    assert case.reported_name in entries[0]["detail"]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda c: c.name)
def test_each_upload_route_answers_each_file_as_documented(
    case: ImageCase, http: httpx.Client, server: ServiceProcess
) -> None:
    alone = post_files(http, "/query", [("image", case)])
    if case.query == 200:
        assert alone.status_code == 200, alone.text
        assert alone.json()["file"] == case.reported_name
        assert len(alone.json()["faces"]) == 1
    else:
        assert_error(alone, case.query)
        assert case.reported_name in alone.json()["detail"]

    batch = post_files(http, "/query/batch", [("images", case), ("images", GOOD)])
    assert batch.status_code == 200, batch.text
    if case.query == 200:
        assert [r["file"] for r in batch.json()["results"]] == [case.reported_name, "good.jpg"]
    else:
        check_rejected(batch.json()["rejected"], case, case.query)
        assert [r["file"] for r in batch.json()["results"]] == ["good.jpg"]

    fresh = unique(GOOD, case.name)
    for parts in ([("images", case)], [("images", case), ("images", fresh)]):
        added = post_files(http, "/gallery", parts)  # type: ignore[arg-type]
        nothing_added = case.gallery != 200 and len(parts) == 1
        # a request that adds nothing answers with its file's own status (issue 14)
        assert added.status_code == (case.gallery if nothing_added else 200), added.text
        body = added.json()
        if nothing_added:
            check_rejected(body["rejected"], case, case.gallery)
            assert case.reported_name in body["detail"]
            continue
        sources = [e["source"] for e in body["added"]]
        if case.gallery == 200:
            assert body["rejected"] == [] and sources[0] == case.reported_name, body
        else:
            check_rejected(body["rejected"], case, case.gallery)
        assert sources.count("good.jpg") == len(parts) - 1

    if case.name == "exif-rotated jpeg":  # EXIF applied: upright, 150 wide and 230 high
        assert (alone.json()["width"], alone.json()["height"]) == (150, 230)
        assert alone.json()["face_found"] is True
    assert_still_serving(http, server)


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda c: c.name)
def test_each_bad_request_gets_its_documented_status(
    case: RequestCase, http: httpx.Client, server: ServiceProcess
) -> None:
    for call in case.before:
        send(http, call)
    answer = send(http, case.call)
    if case.status == 200:
        assert answer.status_code == 200, answer.text
    else:
        assert_error(answer, case.status)
    if case.check is not None:
        case.check(answer.json())
    assert_still_serving(http, server)


def test_corpus_figures(http: httpx.Client, server: ServiceProcess) -> None:
    """The size of the corpus, for docs/reliability.md; and nothing above went wrong."""
    assert len(IMAGE_CASES) >= 30
    assert len(REQUEST_CASES) >= 30
    routes = ("POST /query", "POST /query/batch", "POST /gallery", "POST /gallery (2 files)")
    report(
        "inputs",
        {
            "image_cases": len(IMAGE_CASES),
            "request_cases": len(REQUEST_CASES),
            "upload_routes": list(routes),
            "requests_sent": len(IMAGE_CASES) * len(routes) + len(REQUEST_CASES),
            "server_errors": server_errors(http),
        },
    )
    assert server_errors(http) == {}


# ----------------------------------------------------------------------------- the CLI
def slug(case: ImageCase) -> str:
    return re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-") + case.suffix


@pytest.fixture(scope="module")
def cli_corpus(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, yunet_model: Path
) -> tuple[Path, Path, list[str]]:
    """A folder holding every case as a file, and ``python -m indexer build`` run over it."""
    root = tmp_path_factory.mktemp("cli")
    folder, index = root / "photos", root / "index"
    folder.mkdir()
    for case in IMAGE_CASES:
        (folder / slug(case)).write_bytes(case.data)
    model = ["--model", str(model_path), "--detector", "yunet", "--detector-model", str(yunet_model)]  # fmt: skip
    build = subprocess.run(
        [sys.executable, "-m", "indexer", "build", str(folder), "--index", str(index), *model],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert "Traceback" not in build.stderr, build.stderr
    return folder, index, [build.stdout, *model]


def test_cli_build_reports_each_bad_file_and_indexes_the_rest(
    cli_corpus: tuple[Path, Path, list[str]],
) -> None:
    folder, index, (out, *_) = cli_corpus
    bad = [c for c in IMAGE_CASES if c.cli_status != 200]
    assert f"images found: {len(IMAGE_CASES)}; indexed now: {len(IMAGE_CASES) - len(bad)}" in out
    assert f"files that could not be read: {len(bad)}" in out
    listed = [line for line in out.splitlines() if line.startswith(f"  {folder.resolve()}/")]
    unreadable = {line.split(": ", 1)[0].strip() for line in listed}
    assert {str((folder / slug(c)).resolve()) for c in bad} <= unreadable
    assert indexer_main(["info", "--index", str(index)]) == 0


def test_cli_search_answers_each_bad_file_in_one_line(
    cli_corpus: tuple[Path, Path, list[str]],
) -> None:
    folder, index, (_, *model) = cli_corpus
    # Every file that fails, and a few that work (each costs an embedding; build took them all).
    cases = [c for c in IMAGE_CASES if c.cli_status != 200]
    cases += [c for c in IMAGE_CASES if c.cli_status == 200][::6]
    files = [str(folder / slug(c)) for c in cases]
    search = subprocess.run(
        [sys.executable, "-m", "indexer", "search", *files, "--index", str(index), "-k", "3",
         "--workers", "1", *model],  # build used worker processes; here, the parent alone
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert search.returncode == 1, search.stderr  # 1: some queries failed, each said why
    assert "Traceback" not in search.stderr, search.stderr
    results = {Path(r["query"]).name: r for r in json.loads(search.stdout)["results"]}
    assert len(results) == len(cases)
    for case in cases:
        result = results[slug(case)]
        if case.cli_status == 200:
            assert len(result["faces"]) == 1 and result["faces"][0]["matches"], result
        else:
            error = result["error"]
            assert slug(case) in error and "\n" not in error, error


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = indexer_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("INFO ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_bad_arguments_get_one_error_line(
    cli_corpus: tuple[Path, Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    folder, index, (_, *model) = cli_corpus
    good = str(folder / slug(next(c for c in IMAGE_CASES if c.name == "cmyk jpeg")))
    empty = str(folder / slug(IMAGE_CASES[0]))
    for k in ("0", "-1"):
        code, _, err = run_cli(capsys, "search", good, "--index", str(index), "-k", k, *model)
        assert code == 2 and "-k must be at least 1" in one_error_line(err)
    code, out, _ = run_cli(capsys, "search", good, "--index", str(index), "-k", "1000000000", *model)  # fmt: skip
    assert code == 0
    assert len(json.loads(out)["results"][0]["faces"][0]["matches"]) < len(IMAGE_CASES)
    code, out, _ = run_cli(capsys, "search", empty, "--index", str(index), *model)
    assert code == 1 and "the file is empty" in json.loads(out)["results"][0]["error"]
    missing = str(tmp_path / "no-such-photo.jpg")
    code, _, err = run_cli(capsys, "search", missing, "--index", str(index), *model)
    assert code == 2 and "not found" in one_error_line(err)
    code, _, err = run_cli(capsys, "search", good, "--index", str(tmp_path / "nothing"), *model)
    assert code == 2 and "no gallery store" in one_error_line(err)
    code, _, err = run_cli(capsys, "build", missing, "--index", str(tmp_path / "new"), *model)
    assert code == 2 and "not found" in one_error_line(err)
    code, _, err = run_cli(capsys, "build", str(folder), "--index", str(index), "--batch-size", "0", *model)  # fmt: skip
    assert code == 2 and "--batch-size" in one_error_line(err)


def png_size(data: bytes) -> tuple[int, int]:
    """From the IHDR chunk: Pillow refuses to even open files this large."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_corpus_builds_what_it_claims() -> None:
    """The hostile files are what their names say (so the figures above mean something)."""
    by_name = {c.name: c for c in IMAGE_CASES}
    assert Image.open(io.BytesIO(by_name["animated gif"].data)).n_frames == 3
    assert Image.open(io.BytesIO(by_name["cmyk jpeg"].data)).mode == "CMYK"
    assert Image.open(io.BytesIO(by_name["16-bit png"].data)).mode.startswith("I;16")
    assert Image.open(io.BytesIO(by_name["exif-rotated jpeg"].data)).getexif()[0x0112] == 6
    assert Image.open(io.BytesIO(by_name["1x1 pixel"].data)).size == (1, 1)
    assert Image.open(io.BytesIO(by_name["greyscale pgm"].data)).mode == "L"
    bomb = by_name["decompression bomb"].data
    assert len(bomb) < 100_000 and png_size(bomb) == (8_000, 8_000)
    assert png_size(by_name["png claiming 50000x50000"].data) == (50_000, 50_000)
    assert len(by_name["oversize upload"].data) > UPLOAD_LIMIT
    assert by_name["empty file"].data == b""
