"""scripts/docker-e2e.sh: the images built and run with a real Docker engine (issue 15).

The run itself is slow (a cold build installs PyTorch; docs/docker.md has the figures), so it
is marked ``slow`` and left out of ``make test``; it skips where no engine can be had. The
checks of the script and of its recorded figures run everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from docker_files import ROOT, load_script

SCRIPT = ROOT / "scripts" / "docker-e2e.sh"
FIGURES = ROOT / "docs" / "docker-e2e.json"
PAGE = ROOT / "docs" / "docker.md"
STEPS = ("engine", "base", "inputs", "build", "up", "enrol", "uid", "indexer", "persist")


def engine_skip_reason() -> str | None:
    """Why the script cannot run here, or None."""
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian: apt-get install docker.io)"
    if os.geteuid() != 0:
        return "the check starts dockerd and runs debootstrap: it needs root"
    if (
        shutil.which("docker-compose") is None
        and not Path("/usr/libexec/docker/cli-plugins/docker-compose").exists()
    ):
        return "no Compose (Debian: apt-get install docker-compose)"
    return None


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_images_build_and_serve_end_to_end(tmp_path: Path) -> None:
    if reason := engine_skip_reason():
        pytest.skip(reason)
    figures_path = tmp_path / "figures.json"
    result = subprocess.run(
        ["bash", str(SCRIPT), "--json", str(figures_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=5300,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    for step in STEPS:
        assert f"=== docker-e2e: {step}:" in result.stdout, step
    figures = json.loads(figures_path.read_text())
    assert figures["image_bytes"] > figures["base_image_bytes"] > 0
    assert 0 < figures["up_to_serving_seconds"] <= figures["up_to_healthy_seconds"]


def test_script_names_every_step() -> None:
    text = SCRIPT.read_text()
    for step in STEPS:
        assert f'step {step} "' in text, step


def test_script_fails_naming_its_step(tmp_path: Path) -> None:
    """Without an engine binary it stops at the first step, says which, and exits non-zero."""
    env = {**os.environ, "DOCKERD": str(tmp_path / "no-dockerd"), "DOCKER_E2E_WORK": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--json", str(tmp_path / "figures.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "FAILED at step 'engine'" in result.stderr
    assert "dockerd not found" in result.stderr
    assert not (tmp_path / "figures.json").exists()


def test_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_recorded_figures_are_on_the_docs_page() -> None:
    """docs/docker.md shows exactly what the last ``--record`` run wrote."""
    figures = json.loads(FIGURES.read_text())
    assert figures["command"].startswith("scripts/docker-e2e.sh --record")
    render = load_script("e2e_figures").render
    assert render(figures) in PAGE.read_text()


def test_figures_page_update_replaces_only_the_marked_part() -> None:
    module = load_script("e2e_figures")
    figures = json.loads(FIGURES.read_text())
    page = f"# title\n\nbefore\n\n{module.BEGIN}\nold\n{module.END}\n\nafter\n"
    updated = module.update(page, figures)
    assert updated.startswith("# title\n\nbefore\n\n") and updated.endswith("\n\nafter\n")
    assert "old" not in updated and module.render(figures) in updated
