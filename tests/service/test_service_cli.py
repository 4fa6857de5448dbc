"""``python -m service``: help, flags, and one-line start-up errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from service_process import REPO, clean_env, free_port

from indexer.settings_flags import load_settings
from service.__main__ import parse_args
from service.settings import ServiceSettings


def run_service(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    cmd = [sys.executable, "-m", "service", "--port", str(free_port()), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("facefind: error: ")
    for word in words:
        assert word in last, last


def test_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0
    for flag in ("--host", "--port", "--data-dir", "--model", "--detector", "--detector-model"):
        assert flag in result.stdout


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACEFIND_PORT", "9001")
    monkeypatch.setenv("FACEFIND_HOST", "0.0.0.0")
    monkeypatch.setenv("FACEFIND_API_KEYS", "a, b")
    args = parse_args(["--port", "9002", "--data-dir", str(tmp_path)])
    settings = load_settings(ServiceSettings, args)
    assert (settings.port, settings.host, settings.data_dir) == (9002, "0.0.0.0", tmp_path)
    assert settings.api_keys == ["a", "b"]


def test_a_missing_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pt"
    result = run_service("--model", str(missing), "--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, str(missing))


def test_a_bad_detector_model_is_one_line_and_exit_2(tmp_path: Path, model_path: Path) -> None:
    data = ["--model", str(model_path), "--data-dir", str(tmp_path / "data"), "--detector", "yunet"]
    missing = tmp_path / "yunet.onnx"
    assert_one_line_error(run_service(*data, "--detector-model", str(missing)), str(missing))


def test_a_gallery_of_another_model_is_one_line_and_exit_2(
    tmp_path: Path, model_path: Path, other_model_path: Path
) -> None:
    from indexer.checkpoint import fingerprint
    from indexer.store import GalleryStore

    GalleryStore(tmp_path / "data", fingerprint(other_model_path), 128).close()
    result = run_service("--model", str(model_path), "--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, "built with model")


def test_invalid_settings_are_one_line_and_exit_2() -> None:
    env = clean_env()
    env["FACEFIND_MAX_UPLOAD_BYTES"] = "lots"
    result = subprocess.run(
        [sys.executable, "-m", "service"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert_one_line_error(result, "max_upload_bytes")
