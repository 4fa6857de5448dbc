"""Readers of the Docker files for tests/docker: compose files, Dockerfiles, helper scripts.

No Docker engine is needed: the files are read as text (compose as YAML, with compose's own
variable interpolation re-done here), so these tests run wherever pytest does. A module of its
own, not conftest.py, so that test modules can import it by a name no other folder uses.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
GPU_OVERRIDE = ROOT / "docker-compose.gpu.yml"
DOCKERFILES = {"cpu": ROOT / "docker" / "Dockerfile", "gpu": ROOT / "docker" / "Dockerfile.gpu"}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR-default}`` and ``${VAR:-default}``, applied recursively."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return _VARIABLE.sub(replace, value).replace("$$", "$")


def variables(value: Any) -> set[str]:
    """Names of the variables ``value`` interpolates, recursively."""
    if isinstance(value, dict):
        return set().union(*(variables(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables(item) for item in value)) if value else set()
    return {m["name"] for m in _VARIABLE.finditer(value)} if isinstance(value, str) else set()


def merge_override(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The override file merged over the base the way compose does for these keys (maps merge
    key by key, the rest is replaced)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_override(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_compose(env: Mapping[str, str] | None = None, gpu: bool = False) -> dict[str, Any]:
    """docker-compose.yml (and the GPU override), YAML anchors expanded, variables resolved
    from ``env`` (defaults when empty)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    if gpu:
        data = merge_override(data, yaml.safe_load(GPU_OVERRIDE.read_text()))
    return interpolate(data, env or {})


@dataclass
class Instruction:
    stage: int
    keyword: str
    args: str


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction]
    ignores: list[str] = field(default_factory=list)
    """Rules silenced with ``# hadolint ignore=`` pragmas."""

    def all(self, keyword: str, stage: int | None = None) -> list[str]:
        return [
            i.args
            for i in self.instructions
            if i.keyword == keyword and (stage is None or i.stage == stage)
        ]

    @property
    def final_stage(self) -> int:
        return max(i.stage for i in self.instructions)

    def env(self, stage: int | None = None) -> dict[str, str]:
        """ENV of a stage (the final one by default), as ``KEY=VALUE`` pairs."""
        stage = self.final_stage if stage is None else stage
        values: dict[str, str] = {}
        for args in self.all("ENV", stage):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def args_defaults(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ARG"):
            key, _, value = args.partition("=")
            values[key.strip()] = value.strip()
        return values

    def copies(self, keyword: str = "COPY") -> list[tuple[list[str], list[str], str]]:
        """(flags, sources, destination) of every COPY (or ADD)."""
        out = []
        for args in self.all(keyword):
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            rest = [w for w in words if not w.startswith("--")]
            out.append((flags, rest[:-1], rest[-1]))
        return out

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON array of the (last) CMD, ENTRYPOINT or HEALTHCHECK ... CMD."""
        args = self.all(keyword)[-1]
        return json.loads(args[args.index("[") :])


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped, numbered by stage."""
    instructions: list[Instruction] = []
    ignores: list[str] = []
    stage, pending = -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if m := re.match(r"#\s*hadolint ignore=(\S+)", line):
                ignores.extend(m[1].split(","))
            continue
        if not line and not pending:
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        keyword, _, args = pending.strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return Dockerfile(path, instructions, ignores)


def load_script(name: str) -> ModuleType:
    """A helper script from docker/ (not a package) imported by path."""
    path = ROOT / "docker" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"facefind_docker_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
