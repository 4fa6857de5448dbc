"""docker-compose.yml (and its GPU override) against the service's settings and the two CLIs.

The compose files repeat names that live in Python (FACEFIND_* variables, the port, the store
path, the indexer's arguments); these tests fail when either side changes without the other.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from docker_files import COMPOSE_FILE, GPU_OVERRIDE, ROOT, Dockerfile, load_compose, variables
from pydantic_settings import BaseSettings

from indexer.cli import build_parser
from indexer.settings import IndexerSettings
from service.settings import ServiceSettings

PREFIX = "FACEFIND_"
DATA_VOLUME = "facefind-data"


def setting_variables(settings: type[BaseSettings]) -> set[str]:
    return {PREFIX + name.upper() for name in settings.model_fields}


SERVICE_VARIABLES = setting_variables(ServiceSettings)
# The indexer container also reads FACEFIND_DATA_DIR: docker/indexer_entrypoint.py turns it into
# `--index`.
INDEXER_VARIABLES = setting_variables(IndexerSettings) | {"FACEFIND_DATA_DIR"}
# What the service and the indexer must agree on, or the service refuses the store.
SHARED = {
    "FACEFIND_DATA_DIR",
    "FACEFIND_MODEL",
    "FACEFIND_DETECTOR",
    "FACEFIND_DETECTOR_MODEL",
    "FACEFIND_DEVICE",
    "FACEFIND_PRECISION",
    "FACEFIND_INDEX_FACTORY",
}


def environment(compose: Mapping[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service]["environment"]
    assert isinstance(env, dict), "write `environment:` as a map, KEY: value"
    return {key: "" if value is None else str(value) for key, value in env.items()}


def volume_targets(compose: Mapping[str, Any], service: str) -> dict[str, tuple[str, str]]:
    """Mount target -> (source, mode) of a service's short-syntax volumes."""
    out = {}
    for spec in compose["services"][service]["volumes"]:
        source, target, *mode = spec.split(":")
        out[target] = (source, mode[0] if mode else "rw")
    return out


def published_ports(compose: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of the service's short-syntax ``ports``."""
    out = []
    for spec in compose["services"]["service"]["ports"]:
        *_, host, container = str(spec).split("/")[0].split(":")
        out.append((int(host), int(container)))
    return out


def container_env(image: Dockerfile, compose_env: Mapping[str, str]) -> dict[str, str]:
    """What the process in the container sees: the image's ENV, then compose's."""
    env = {k: v for k, v in image.env().items() if k.startswith(PREFIX)}
    env.update(compose_env)
    return env


def test_only_the_service_starts_on_a_plain_up(compose: dict[str, Any]) -> None:
    assert "profiles" not in compose["services"]["service"]
    assert compose["services"]["indexer"]["profiles"] == ["indexer"]
    others = [name for name in compose["services"] if name != "service"]
    assert all(compose["services"][name].get("profiles") for name in others), others


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_environment_variables_are_settings_fields(gpu: bool) -> None:
    compose = load_compose(gpu=gpu)
    unknown_service = set(environment(compose, "service")) - SERVICE_VARIABLES
    unknown_indexer = set(environment(compose, "indexer")) - INDEXER_VARIABLES
    assert not unknown_service, f"not ServiceSettings fields: {sorted(unknown_service)}"
    assert not unknown_indexer, f"not IndexerSettings fields: {sorted(unknown_indexer)}"


def test_interpolated_facefind_variables_are_settings_and_wired_to_their_own_name() -> None:
    for path in (COMPOSE_FILE, GPU_OVERRIDE):
        raw = yaml.safe_load(path.read_text())
        used = {v for v in variables(raw) if v.startswith(PREFIX)}
        assert used <= SERVICE_VARIABLES | INDEXER_VARIABLES, (path.name, sorted(used))
        for name, service in raw["services"].items():
            for key, value in (service.get("environment") or {}).items():
                names = variables(value)
                assert names <= {key}, f"{path.name}: {name}.{key} reads {sorted(names)}"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_compose_values_are_accepted_by_the_settings(
    gpu: bool,
    dockerfiles: dict[str, Dockerfile],
    settings_env: Callable[[Mapping[str, str]], None],
) -> None:
    compose = load_compose(gpu=gpu)
    image = dockerfiles["gpu" if gpu else "cpu"]
    settings_env(container_env(image, environment(compose, "service")))
    service = ServiceSettings()
    settings_env(container_env(image, environment(compose, "indexer")))
    indexer = IndexerSettings()
    assert service.device == indexer.device == ("cuda" if gpu else "auto")


def test_compose_defaults_are_the_image_defaults(
    compose: dict[str, Any],
    dockerfiles: dict[str, Dockerfile],
    settings_env: Callable[[Mapping[str, str]], None],
) -> None:
    """A value written in the compose file only makes the image's default visible; changing one
    in one place only would silently give `docker run` and `docker compose` different setups."""
    image = dockerfiles["cpu"]
    settings_env(container_env(image, {}))
    image_service, image_indexer = ServiceSettings(), IndexerSettings()
    settings_env(container_env(image, environment(compose, "service")))
    assert ServiceSettings() == image_service
    settings_env(container_env(image, environment(compose, "indexer")))
    assert IndexerSettings() == image_indexer


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_service_and_indexer_agree_on_model_detector_and_store(gpu: bool) -> None:
    compose = load_compose(gpu=gpu)
    service, indexer = environment(compose, "service"), environment(compose, "indexer")
    assert {k: service.get(k) for k in SHARED} == {k: indexer.get(k) for k in SHARED}


@pytest.mark.parametrize("env", [{}, {"FACEFIND_PORT": "9123"}], ids=["default", "9123"])
def test_published_port_and_health_check_follow_facefind_port(
    env: dict[str, str],
    dockerfiles: dict[str, Dockerfile],
    healthcheck: ModuleType,
    settings_env: Callable[[Mapping[str, str]], None],
) -> None:
    compose = load_compose(env)
    service_env = container_env(dockerfiles["cpu"], environment(compose, "service"))
    settings_env(service_env)
    port = ServiceSettings().port
    assert port == int(env.get("FACEFIND_PORT", 8000))
    assert published_ports(compose) == [(port, port)]
    assert healthcheck.health_url(service_env) == f"http://127.0.0.1:{port}/health"


def test_health_check_is_the_script_the_images_ship(
    compose: dict[str, Any], dockerfiles: dict[str, Dockerfile]
) -> None:
    test = compose["services"]["service"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    script = test[2]
    for image in dockerfiles.values():
        assert script in shipped_files(image)
        assert image.exec_form("HEALTHCHECK") == test[1:]
    assert compose["services"]["indexer"]["healthcheck"] == {"disable": True}


def test_health_check_path_is_a_route_of_the_service(
    healthcheck: ModuleType, tmp_path: Path
) -> None:
    from service.main import create_app

    app = create_app(ServiceSettings(data_dir=tmp_path))
    assert "get" in app.openapi()["paths"][healthcheck.HEALTH_PATH]
    assert healthcheck.health_url({}).endswith(healthcheck.HEALTH_PATH)


def test_image_exposes_the_port_compose_publishes(
    compose: dict[str, Any], dockerfiles: dict[str, Dockerfile]
) -> None:
    for image in dockerfiles.values():
        port = int(image.env()["FACEFIND_PORT"])
        assert image.all("EXPOSE") == [str(port)]
        assert published_ports(compose) == [(port, port)]


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_store_volume_is_mounted_at_the_data_dir(gpu: bool) -> None:
    compose = load_compose(gpu=gpu)
    assert DATA_VOLUME in compose["volumes"]
    for name in ("service", "indexer"):
        data_dir = environment(compose, name)["FACEFIND_DATA_DIR"]
        assert volume_targets(compose, name)[data_dir] == (DATA_VOLUME, "rw"), name


@pytest.mark.parametrize(
    ("env", "source"), [({}, "./gallery"), ({"GALLERY_DIR": "/photos"}, "/photos")]
)
def test_gallery_folder_is_mounted_read_only(env: dict[str, str], source: str) -> None:
    mounts = volume_targets(load_compose(env), "indexer")
    assert mounts["/gallery"] == (source, "ro")
    assert "/gallery" not in volume_targets(load_compose(env), "service")


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
@pytest.mark.parametrize("run_args", [None, ["build", "/gallery"]], ids=["default", "readme"])
def test_indexer_command_parses_with_the_indexer_cli(
    gpu: bool,
    run_args: list[str] | None,
    indexer_entrypoint: ModuleType,
    dockerfiles: dict[str, Dockerfile],
) -> None:
    """`docker compose run --rm indexer build /gallery` (run_args) replaces the command; the
    entrypoint stays. Both must index the mounted gallery into the service's store."""
    compose = load_compose(gpu=gpu)
    indexer = compose["services"]["indexer"]
    python, script = indexer["entrypoint"]
    assert python == "python"
    assert script in shipped_files(dockerfiles["gpu" if gpu else "cpu"])
    data_dir = environment(compose, "indexer")["FACEFIND_DATA_DIR"]
    argv = indexer_entrypoint.with_default_index(run_args or indexer["command"], data_dir)
    args = build_parser().parse_args(argv)
    assert args.command == "build"
    assert args.gallery == Path("/gallery")
    assert str(args.gallery) in volume_targets(compose, "indexer")
    assert args.index == Path(data_dir)


def test_service_command_is_python_m_service(
    compose: dict[str, Any], dockerfiles: dict[str, Dockerfile]
) -> None:
    command = compose["services"]["service"]["command"]
    assert command[:3] == ["python", "-m", "service"]
    for image in dockerfiles.values():
        assert image.exec_form("CMD") == command
    assert importlib.util.find_spec("service.__main__") is not None, "no `python -m service`"
    parser = service_parser()
    assert parser is not None, "service.__main__ has neither build_parser() nor parse_args()"
    parser.parse_args(command[3:])


def test_service_cli_flags_are_settings_fields() -> None:
    """Compose configures the service through FACEFIND_* only; that is the same configuration
    as the flags of `python -m service` as long as every flag is a settings field."""
    parser = service_parser()
    assert parser is not None
    flags = {
        option[2:].replace("-", "_")
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert flags <= set(ServiceSettings.model_fields), sorted(
        flags - set(ServiceSettings.model_fields)
    )


def test_gpu_override_reserves_the_gpu_and_builds_the_gpu_image() -> None:
    cpu, gpu = load_compose(), load_compose(gpu=True)
    for name in ("service", "indexer"):
        service = gpu["services"][name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
        assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["build"]["dockerfile"] == "docker/Dockerfile.gpu"
        assert service["image"] != cpu["services"][name]["image"]
    assert cpu["services"]["service"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert gpu["services"]["indexer"]["profiles"] == ["indexer"]


def test_service_restarts_and_the_indexer_does_not(compose: dict[str, Any]) -> None:
    assert compose["services"]["service"]["restart"] == "unless-stopped"
    assert compose["services"]["indexer"]["restart"] == "no"


def shipped_files(image: Dockerfile) -> set[str]:
    """Paths in the final image of the files COPY'd from docker/ into a directory."""
    out = set()
    for flags, sources, dest in image.copies():
        if any(f.startswith("--from") for f in flags) or not dest.endswith("/"):
            continue
        out |= {dest + Path(s).name for s in sources if s.startswith("docker/")}
    return out


def service_parser() -> argparse.ArgumentParser | None:
    """The argparse parser of `python -m service`: its ``build_parser()`` where it has one, else
    the parser its ``parse_args()`` builds, caught on the way."""
    module = importlib.import_module("service.__main__")
    if hasattr(module, "build_parser"):
        return module.build_parser()
    if not hasattr(module, "parse_args"):
        return None
    caught: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def catch(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        caught.append(self)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        module.parse_args([])
    return caught[0]
