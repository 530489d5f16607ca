"""Every text the Dagster UI or ``--help`` shows is plain and present.

The UI shows asset, check, job, op, sensor, schedule and resource descriptions, Config class
docstrings and the descriptions of Config and resource fields as they are written: RST markup (double backticks, ``:func:`` roles)
shows literally there and in argparse's ``--help``. Every asset, check, job, sensor and schedule
carries a description, so nothing in the UI is left unexplained.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import dagster as dg
import pytest

from alphadag.cli import build_parser

RST_MARKUP = re.compile(r"``|:(?:func|class|meth|mod|attr|data|obj|exc|ref):`")


def _config_field_texts(where: str, config_type) -> Iterator[tuple[str, str]]:
    """(place, description) of every described field of a Dagster config type, nested ones too."""
    inner = getattr(config_type, "inner_type", None)  # a list of Config: its element's fields
    if inner is not None:
        yield from _config_field_texts(f"{where}[]", inner)
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        if field.description:
            yield f"{where}.{name}", field.description
        yield from _config_field_texts(f"{where}.{name}", field.config_type)


def _described(defs: dg.Definitions) -> dict[str, str | None]:
    """place -> description of every object whose description must be present."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    texts: dict[str, str | None] = {}
    for node in graph.asset_nodes:
        texts[f"asset {node.key.to_user_string()}"] = node.description
    for key in graph.asset_check_keys:
        texts[f"check {key.to_user_string()}"] = graph.get_check_spec(key).description
    for job in repo.get_all_jobs():
        if not job.name.startswith("__"):  # Dagster's implicit asset job has no author
            texts[f"job {job.name}"] = job.description
    for schedule in repo.schedule_defs:
        texts[f"schedule {schedule.name}"] = schedule.description
    for sensor in repo.sensor_defs:
        texts[f"sensor {sensor.name}"] = sensor.description
    return texts


def _shown(defs: dg.Definitions) -> dict[str, str]:
    """place -> every non-empty text the UI shows: the descriptions above, ops, resources, and
    the fields of op (asset Config) and resource configuration."""
    repo = defs.get_repository_def()
    texts = {place: text for place, text in _described(defs).items() if text}
    for job in repo.get_all_jobs():
        for node in job.graph.node_defs:
            if node.description:
                texts[f"op {node.name}"] = node.description
            schema = getattr(node, "config_schema", None)
            if schema is not None:
                if schema.description:  # the Config class's docstring
                    texts[f"config of {node.name}"] = schema.description
                texts.update(_config_field_texts(f"config of {node.name}", schema.config_type))
    for key, resource in repo.get_top_level_resources().items():
        if resource.description:
            texts[f"resource {key}"] = resource.description
        if resource.config_schema is not None:
            texts.update(
                _config_field_texts(f"config of resource {key}", resource.config_schema.config_type)
            )
    return texts


def test_every_asset_check_job_sensor_and_schedule_is_described(defs):
    missing = sorted(place for place, text in _described(defs).items() if not (text or "").strip())
    assert missing == [], f"add a description to: {missing}"


def test_ui_texts_carry_no_rst_markup(defs):
    texts = _shown(defs)
    assert any(place.startswith("config of ") for place in texts)  # the walk reaches fields
    marked = {place: RST_MARKUP.findall(text) for place, text in texts.items()}
    assert {place: found for place, found in marked.items() if found} == {}


def _parsers(
    parser: argparse.ArgumentParser, argv: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """The argv prefix of the command and of every subcommand, nested ones too."""
    yield argv
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*argv, name))


COMMANDS = list(_parsers(build_parser()))


def test_every_subcommand_is_checked():
    assert {"demo", "materialize", "backtest"} <= {argv[0] for argv in COMMANDS if argv}


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(("alphadag", *argv)))
def test_help_has_no_backticks(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*argv, "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert "usage: alphadag" in shown
    assert [line for line in shown.splitlines() if "`" in line] == []
