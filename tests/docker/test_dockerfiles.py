"""The two Dockerfiles: what the images contain, how they are configured, and what is pinned.

Read as text: no image is built here (no Docker engine on CI), so these check the recipe.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import tomllib
from docker_files import ROOT, Dockerfile
from packaging.requirements import Requirement

from indexer.defaults import DEFAULT_MODEL
from service.settings import ServiceSettings

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYTHON_OF_BASE = {"ubuntu22.04": "3.10", "ubuntu24.04": "3.12"}
"""Python of NVIDIA's CUDA images, by their Ubuntu (python3 from the distribution)."""


def requirement(name: str, extra: str | None = None) -> Requirement:
    specs = PYPROJECT["optional-dependencies"][extra] if extra else PYPROJECT["dependencies"]
    return next(Requirement(s) for s in specs if Requirement(s).name == name)


def facefind_env(image: Dockerfile) -> dict[str, str]:
    return {k: v for k, v in image.env().items() if k.startswith("FACEFIND_")}


def base_image(image: Dockerfile) -> str:
    """The final stage's base, with ARG defaults filled in."""
    base = image.all("FROM", image.final_stage)[0].split()[0]
    for name, value in image.args_defaults().items():
        base = base.replace("${" + name + "}", value)
    return base


def test_image_environment_variables_are_service_settings(
    dockerfiles: dict[str, Dockerfile], settings_env: Callable[[Mapping[str, str]], None]
) -> None:
    fields = {"FACEFIND_" + name.upper() for name in ServiceSettings.model_fields}
    for name, image in dockerfiles.items():
        for stage in range(image.final_stage + 1):
            unknown = {k for k in image.env(stage) if k.startswith("FACEFIND_")} - fields
            assert not unknown, f"{name}: not ServiceSettings fields: {sorted(unknown)}"
        settings_env(facefind_env(image))
        settings = ServiceSettings()
        assert settings.host == "0.0.0.0", "a container must listen beyond its loopback"
        assert settings.detector == "yunet"


def test_cpu_and_gpu_images_are_configured_alike(dockerfiles: dict[str, Dockerfile]) -> None:
    cpu, gpu = dockerfiles["cpu"], dockerfiles["gpu"]
    assert facefind_env(cpu) == facefind_env(gpu)
    for keyword in ("CMD", "HEALTHCHECK", "EXPOSE", "USER", "WORKDIR", "ADD"):
        assert cpu.all(keyword, cpu.final_stage) == gpu.all(keyword, gpu.final_stage), keyword
    assert cpu.copies()[-3:] == gpu.copies()[-3:]


def test_images_are_multi_stage_with_only_the_venv_from_the_builder(
    dockerfiles: dict[str, Dockerfile],
) -> None:
    for name, image in dockerfiles.items():
        assert image.final_stage >= 1, name
        final = image.final_stage
        from_builder = [
            (sources, dest) for flags, sources, dest in image.copies() if "--from=builder" in flags
        ]
        assert from_builder == [(["/opt/venv"], "/opt/venv")], name
        runs = " ".join(image.all("RUN", final))
        # Nothing is installed with pip in the final stage, so no pip cache reaches it; apt
        # installs there may only be the interpreter and the C++ compiler torch.compile needs.
        assert "pip " not in runs, name
        for installed in re.findall(r"apt-get install ([^&]*)", runs):
            packages = {w for w in installed.split() if not w.startswith("-")}
            assert packages <= {"python3", "g++"}, (name, packages)
        assert "rm -rf /var/lib/apt/lists/*" in runs or "apt-get" not in runs, name


def test_pip_caches_are_off_in_the_builders(dockerfiles: dict[str, Dockerfile]) -> None:
    for image in dockerfiles.values():
        assert image.env(0).get("PIP_NO_CACHE_DIR") == "1"


def test_images_run_as_a_non_root_user(dockerfiles: dict[str, Dockerfile]) -> None:
    for name, image in dockerfiles.items():
        user = image.all("USER", image.final_stage)[-1]
        uid = user.split(":")[0]
        assert uid not in {"root", "0"}, name
        runs = " ".join(image.all("RUN", image.final_stage))
        assert f"--uid {uid}" in runs, f"{name}: USER {uid} is never created"
        # The store directory must belong to that user: a new named volume copies its owner.
        data_dir = image.env()["FACEFIND_DATA_DIR"]
        assert re.search(rf"chown \S+ {re.escape(data_dir)}\b", runs), name


def test_cpu_image_gets_cpu_only_torch(dockerfiles: dict[str, Dockerfile]) -> None:
    cpu = dockerfiles["cpu"]
    runs = " ".join(cpu.all("RUN"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs
    assert '"torch==${TORCH_VERSION}+cpu"' in runs
    assert '"torchvision==${TORCHVISION_VERSION}+cpu"' in runs
    assert "torch.version.cuda is None" in runs, "the build must fail if pip swaps in CUDA torch"
    # By default: the real index, and the CPU check on. Offline builds override both.
    args = cpu.args_defaults()
    assert args["TORCH_FROM"] == "index"
    assert args["CPU_ONLY_TORCH"] == "1"


def test_local_wheels_must_have_the_pinned_versions(dockerfiles: dict[str, Dockerfile]) -> None:
    """TORCH_FROM=context takes wheel files by the pinned versions, not whatever lies there."""
    runs = " ".join(dockerfiles["cpu"].all("RUN"))
    assert '/local/torch-"${TORCH_VERSION}"*.whl' in runs
    assert '/local/torchvision-"${TORCHVISION_VERSION}"*.whl' in runs
    mounts = re.findall(r"--mount=type=bind,source=(\S+),target=/local", runs)
    assert mounts == ["docker/local"]
    assert (ROOT / "docker" / "local").is_dir(), "RUN --mount needs the folder in the context"


def test_gpu_image_matches_cuda_of_base_torch_and_faiss(
    dockerfiles: dict[str, Dockerfile],
) -> None:
    gpu = dockerfiles["gpu"]
    args = gpu.args_defaults()
    base = base_image(gpu)
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.\d+\.\d+-(base|runtime)-(ubuntu\d+\.\d+)", base)
    assert match, base
    cuda_major = match[1]
    assert args["TORCH_CUDA"].startswith(f"cu{cuda_major}"), "torch wheels for another CUDA"
    # faiss-gpu's wheels name the CUDA they need in their dependencies (nvidia-*-cu12).
    assert cuda_major == "12"
    runs = " ".join(gpu.all("RUN"))
    assert "pip uninstall -y faiss-cpu" in runs
    assert runs.index("pip uninstall -y faiss-cpu") < runs.index('"faiss-gpu==${FAISS_VERSION}"')
    assert "StandardGpuResources" in runs, "the build must fail without GPU FAISS"


def test_pinned_versions_are_inside_pyproject_ranges(dockerfiles: dict[str, Dockerfile]) -> None:
    for name, image in dockerfiles.items():
        args = image.args_defaults()
        assert requirement("torch").specifier.contains(args["TORCH_VERSION"]), name
        assert requirement("torchvision").specifier.contains(args["TORCHVISION_VERSION"]), name
    faiss = dockerfiles["gpu"].args_defaults()["FAISS_VERSION"]
    assert requirement("faiss-gpu", extra="gpu").specifier.contains(faiss)


def test_base_images_have_a_python_pyproject_accepts(dockerfiles: dict[str, Dockerfile]) -> None:
    requires = Requirement("python" + PYPROJECT["requires-python"]).specifier
    cpu_base = base_image(dockerfiles["cpu"])
    match = re.fullmatch(r"python:(\d+\.\d+)-slim-\w+", cpu_base)
    assert match, cpu_base
    assert requires.contains(match[1])
    gpu_base = base_image(dockerfiles["gpu"])
    ubuntu = gpu_base.rsplit("-", 1)[1]
    assert requires.contains(PYTHON_OF_BASE[ubuntu]), gpu_base
    # The builder and the runtime of each image must be the same image: the venv links to its
    # interpreter.
    for name, image in dockerfiles.items():
        bases = {f.split()[2]: f.split()[0] for f in image.all("FROM")}
        assert bases["builder"] == bases["runtime"], name


def test_yunet_is_the_model_our_tests_use_pinned_by_checksum(
    dockerfiles: dict[str, Dockerfile], yunet_model: Path
) -> None:
    """The image's detector is checked against the copy tests/indexer run YuNet with."""
    expected = hashlib.sha256(yunet_model.read_bytes()).hexdigest()
    for name, image in dockerfiles.items():
        args = image.args_defaults()
        assert args["YUNET_SHA256"] == expected, name
        assert re.fullmatch(
            r"https://media\.githubusercontent\.com/media/opencv/opencv_zoo/[0-9a-f]{40}/"
            r"models/face_detection_yunet/face_detection_yunet_\w+\.onnx",
            args["YUNET_URL"],
        ), f"{name}: not a commit-pinned OpenCV zoo URL: {args['YUNET_URL']}"
        # Fetched in a stage of its own, checked there whatever YUNET_URL is, then copied.
        stage = next(i for i, f in enumerate(image.all("FROM")) if f.endswith(" AS yunet"))
        (add,) = image.all("ADD")
        assert add == "${YUNET_URL} /yunet/face_detection_yunet.onnx", name
        assert image.all("ADD", stage) == [add], name
        runs = " ".join(image.all("RUN", stage))
        assert '"${YUNET_SHA256}" /yunet/face_detection_yunet.onnx' in runs, name
        assert "sha256sum -c /yunet/SHA256SUMS" in runs, name
        copied = [dest for flags, _, dest in image.copies() if "--from=yunet" in flags]
        assert copied == [image.env()["FACEFIND_DETECTOR_MODEL"]], name


def test_default_model_is_copied_where_facefind_model_points(
    dockerfiles: dict[str, Dockerfile],
) -> None:
    for name, image in dockerfiles.items():
        model_dirs = [dest for _, sources, dest in image.copies() if sources == ["models/"]]
        assert len(model_dirs) == 1, name
        assert image.env()["FACEFIND_MODEL"] == model_dirs[0] + DEFAULT_MODEL.name, name


def test_copy_sources_exist_in_the_repository(dockerfiles: dict[str, Dockerfile]) -> None:
    for name, image in dockerfiles.items():
        for flags, sources, _ in image.copies():
            if any(f.startswith("--from") for f in flags):
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"{name}: COPY {source}: not in the repository"


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_every_hadolint_ignore_has_a_reason(name: str, dockerfiles: dict[str, Dockerfile]) -> None:
    image = dockerfiles[name]
    text = image.path.read_text()
    explained = {
        code
        for line in text.splitlines()
        if line.lstrip().startswith("#") and "hadolint ignore" not in line
        for code in re.findall(r"DL\d{4}|SC\d{4}", line)
    }
    unexplained = set(image.ignores) - explained
    assert not unexplained, f"{image.path.name}: ignored without a reason: {sorted(unexplained)}"


def test_dockerfiles_build_with_the_engines_builtin_frontend(
    dockerfiles: dict[str, Dockerfile],
) -> None:
    """No ``# syntax=`` line: BuildKit always pulls the frontend image it names, so no build
    would work without a registry. Nor flags newer than the frontend of Docker 20.10
    (Debian 12's engine, which scripts/docker-e2e.sh builds with): ADD --checksum, COPY --link,
    heredocs."""
    for name, image in dockerfiles.items():
        text = image.path.read_text()
        assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), name
        for keyword in ("ADD", "COPY"):
            for flags, _, _ in image.copies(keyword):
                assert not any(f.startswith(("--checksum", "--link", "--parents")) for f in flags)
        assert "<<" not in " ".join(image.all("RUN")), f"{name}: heredoc"
