"""Command-line flags generated from settings groups, and settings loaded from them.

The settings classes are the one list of options: each field becomes ``--field-name`` (typed,
with the field's choices and the first sentence of its docstring as help), and the values a
user gives on the command line override the environment. A value pydantic rejects becomes a
``ConfigError`` naming the flag, which each entry point prints as its one-line error.
"""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from indexer.errors import ConfigError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def add_settings_flags(
    parser: argparse.ArgumentParser,
    *groups: type[BaseSettings],
    required: frozenset[str] = frozenset(),
    skip: frozenset[str] = frozenset(),
) -> None:
    """One flag per field of the groups (each field once, in the groups' order)."""
    seen: set[str] = set(skip)
    for group in groups:
        for name, field in group.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            flag = "--" + name.replace("_", "-")
            doc = (field.description or "").split(". ")[0].rstrip(".").replace("%", "%%")
            kind = _unwrap_optional(field.annotation)
            if kind is bool:
                # A setting that is on by default needs its --no- form to be turned off.
                action = argparse.BooleanOptionalAction if field.default is True else "store_true"
                parser.add_argument(flag, action=action, default=None, help=doc)
            elif get_origin(kind) is list:
                (item,) = get_args(kind) or (str,)
                parser.add_argument(flag, type=_caster(item), nargs="+",
                                    required=name in required, help=doc)  # fmt: skip
            elif get_origin(kind) is Literal:
                parser.add_argument(flag, choices=[str(c) for c in get_args(kind)],
                                    required=name in required, help=doc)  # fmt: skip
            else:
                parser.add_argument(flag, type=_caster(kind), required=name in required,
                                    help=doc)  # fmt: skip


def load_settings(cls: type[SettingsT], args: argparse.Namespace | dict[str, Any]) -> SettingsT:
    """``cls`` from the environment, overridden by the flags given (those not None)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    given = {k: v for k, v in values.items() if v is not None and k in cls.model_fields}
    try:
        return cls(**given)
    except ValidationError as exc:
        raise _settings_error(exc, cls, set(given)) from None


def _settings_error(exc: ValidationError, cls: type[BaseSettings], flags: set[str]) -> ConfigError:
    """pydantic's report as one clause per problem, each naming the setting and where its
    value came from: the flag where one was given, else the environment variable."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        if not name:
            problems.append(str(error["msg"]))
            continue
        source = "--" + name.replace("_", "-") if name in flags else (prefix + name).upper()
        problems.append(f"{name}: {error['msg']} ({source})")
    return ConfigError("; ".join(problems))


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> X: a flag that is not given is None anyway."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _caster(kind: Any) -> type:
    return kind if kind in (Path, int, float) else str
