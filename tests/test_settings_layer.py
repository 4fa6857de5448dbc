"""The settings groups shared by the three entry points, and the flags generated from them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from indexer.cli import build_parser as indexer_parser
from indexer.detect import DETECTORS
from indexer.errors import ConfigError, FacefindError
from indexer.settings import FaceFlowSettings, IndexerSettings, ModelSettings, StoreSettings
from indexer.settings_flags import add_settings_flags, load_settings
from service.__main__ import parse_args as service_args
from service.settings import ServiceSettings
from training.cli import build_parser as training_parser
from training.distill_settings import DistillSettings
from training.settings import TrainSettings

GROUPS = (ModelSettings, FaceFlowSettings, StoreSettings)


def _parser(*groups: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_settings_flags(parser, *groups)
    return parser


@pytest.mark.parametrize("entry", [IndexerSettings, ServiceSettings])
def test_every_entry_point_shares_the_groups(entry: type) -> None:
    for group in GROUPS:
        assert issubclass(entry, group)
        for name, field in group.model_fields.items():
            assert entry.model_fields[name].annotation == field.annotation
            assert entry.model_fields[name].default == field.default


def test_training_shares_the_device_and_flow_groups() -> None:
    assert set(ModelSettings.model_fields) - {"model"} <= set(TrainSettings.model_fields)
    assert {"device", "precision"} <= set(DistillSettings.model_fields)
    assert {"detector", "detector_model"} <= set(TrainSettings.model_fields)


def test_the_detector_names_are_listed_once() -> None:
    for parser, argv in (
        (indexer_parser(), ["build", "g", "--index", "i", "--detector", "mtcnn"]),
        (training_parser(), ["prepare", "s", "--out", "o", "--detector", "mtcnn"]),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    action = next(a for a in _parser(FaceFlowSettings)._actions if a.dest == "detector")
    assert tuple(action.choices or ()) == DETECTORS


def test_flags_are_typed_and_documented() -> None:
    parser = _parser(*GROUPS)
    args = parser.parse_args(["--max-pixels", "1000", "--detector-model", "y.onnx"])
    assert args.max_pixels == 1000 and args.detector_model == Path("y.onnx")
    assert args.model is None and args.store_url is None
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["store_url"] and "postgresql://" in helps["store_url"]
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--device", "tpu"])


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEFIND_DETECTOR", "haar")
    monkeypatch.setenv("FACEFIND_BATCH_SIZE", "8")
    args = indexer_parser().parse_args(["build", "g", "--index", "i", "--detector", "none"])
    settings = load_settings(IndexerSettings, args)
    assert (settings.detector, settings.batch_size) == ("none", 8)


def test_a_bad_value_names_the_setting_and_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(IndexerSettings, {"batch_size": 0})
    message = str(caught.value)
    assert message.startswith("batch_size: ") and message.endswith("(--batch-size)")
    monkeypatch.setenv("FACEFIND_DISTILL_IMAGE_SIZE", "huge")
    with pytest.raises(ConfigError) as caught:
        load_settings(DistillSettings, {})
    assert str(caught.value).endswith("(FACEFIND_DISTILL_IMAGE_SIZE)")


def test_config_errors_are_facefind_errors_and_value_errors() -> None:
    """One except clause at each edge (FacefindError); callers of the core may still catch
    ValueError for a bad argument."""
    assert issubclass(ConfigError, FacefindError) and issubclass(ConfigError, ValueError)


def test_the_service_has_flags_for_its_shared_groups_but_not_for_secrets() -> None:
    args = service_args(["--store-url", "postgresql://u@h/db", "--max-pixels", "5"])
    settings = load_settings(ServiceSettings, args)
    assert (settings.store_url, settings.max_pixels) == ("postgresql://u@h/db", 5)
    with pytest.raises(SystemExit):
        service_args(["--api-keys", "secret"])


def test_a_malformed_size_plan_fails_with_the_settings() -> None:
    with pytest.raises(ConfigError, match="SIZE:SHARE"):
        load_settings(DistillSettings, {"sizes": "big:1"})
    with pytest.raises(ConfigError, match="must end at --image-size 96"):
        load_settings(DistillSettings, {"sizes": "64:1"})
