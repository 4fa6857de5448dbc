"""The checks that need tools but no Docker engine: hadolint and docker-compose config.

Locally they skip when a tool is missing; on CI (CI set) a missing tool fails, because .ci/run
installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_files import ROOT, load_compose

SCRIPT = ROOT / "scripts" / "check-docker.sh"


def tool(name: str) -> str:
    """Path of a tool, from .venv/bin or PATH; skips (fails on CI) when it is missing."""
    venv_tool = ROOT / ".venv" / "bin" / name
    found = str(venv_tool) if venv_tool.is_file() else shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing on CI: .ci/run must install it")
        pytest.skip(f"{name} is not installed here")
    return found


def compose_config(env: dict[str, str], *files: str, env_file: Path) -> dict[str, Any]:
    """What docker-compose itself makes of the files, variables resolved from ``env`` only
    (``env_file`` stands in for a developer's .env)."""
    env_file.write_text("")
    args = [arg for file in files for arg in ("-f", file)]
    args += ["--env-file", str(env_file), "--profile", "indexer", "config"]
    result = subprocess.run(
        [tool("docker-compose"), *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("FACEFIND_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_check_docker_script_passes() -> None:
    tool("hadolint")
    tool("docker-compose")
    result = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "are clean" in result.stdout


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_docker_compose_reads_the_files_as_these_tests_do(gpu: bool, tmp_path: Path) -> None:
    """Our reading of the compose files (anchors, interpolation, the override merge) is what
    the tests above check; here it is held against docker-compose's own."""
    env = {"FACEFIND_PORT": "9123", "FACEFIND_API_KEYS": "k1,k2", "GALLERY_DIR": "/photos"}
    files = ["docker-compose.yml", "docker-compose.gpu.yml"] if gpu else ["docker-compose.yml"]
    theirs = compose_config(env, *files, env_file=tmp_path / ".env")["services"]
    ours = load_compose(env, gpu=gpu)["services"]
    for name in ("service", "indexer"):
        assert {k: str(v) for k, v in theirs[name]["environment"].items()} == {
            k: str(v) for k, v in ours[name]["environment"].items()
        }, name
        assert theirs[name]["image"] == ours[name]["image"]
        assert theirs[name]["build"]["dockerfile"] == ours[name]["build"]["dockerfile"]
        assert theirs[name].get("command") == ours[name].get("command")
        assert theirs[name].get("entrypoint") == ours[name].get("entrypoint")
    ports = theirs["service"]["ports"]
    assert [(p["published"], p["target"]) for p in ports] in ([(9123, 9123)], [("9123", 9123)])
    assert "/photos:/gallery:ro" in theirs["indexer"]["volumes"]
