"""The settings object: one definition per variable, validated, never read at import; the
freshness deadline follows the daily schedule."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphadag import settings
from alphadag.defs.automation import freshness
from alphadag.defs.automation.freshness import FRESHNESS_MARGIN, Deadline
from alphadag.settings import Settings, parse_daily_cron

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "alphadag"
NY = ZoneInfo("America/New_York")
VARIABLES = [f.metadata["env"] for f in dataclasses.fields(Settings)]


def test_unset_and_blank_variables_take_the_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({name: "  " for name in VARIABLES}) == Settings()
    s = Settings()
    assert s.data_root == ".alphadag/data"
    assert s.history_start == dt.date(2010, 1, 1)
    assert (s.source, s.tickers, s.timezone) == ("sample", (), "America/New_York")
    assert s.daily_cron == "30 18 * * 1-5"
    assert s.mlflow_uri == "sqlite:///.alphadag/mlflow.db"
    assert (s.champion_reruns, s.git_commit) == (5, None)


def test_every_variable_overrides_its_field():
    env = {
        "ALPHADAG_DATA_ROOT": "s3://bucket/data",
        "ALPHADAG_HISTORY_START": "2024-01-02",
        "ALPHADAG_SOURCE": "csv",
        "ALPHADAG_LANDING_DIR": "/landing",
        "ALPHADAG_TICKERS": " AAPL, ,MSFT ",
        "ALPHADAG_DAILY_CRON": "0 19 * * MON-FRI",
        "ALPHADAG_TIMEZONE": "Europe/London",
        "ALPHADAG_ALERT_LOG": "/var/log/alerts.jsonl",
        "ALPHADAG_MLFLOW_URI": "http://mlflow:5000",
        "ALPHADAG_MLFLOW_ARTIFACTS": "s3://bucket/mlflow",
        "MLFLOW_UI_BASE": "https://mlflow.example.com",
        "ALPHADAG_CHAMPION_RERUNS": "3",
        "ALPHADAG_GIT_COMMIT": "abc123",
    }
    assert sorted(env) == sorted(VARIABLES)
    s = Settings.from_env(env)
    assert s == Settings(
        data_root="s3://bucket/data",
        history_start=dt.date(2024, 1, 2),
        source="csv",
        landing_dir="/landing",
        tickers=("AAPL", "MSFT"),
        daily_cron="0 19 * * MON-FRI",
        timezone="Europe/London",
        alert_log="/var/log/alerts.jsonl",
        mlflow_uri="http://mlflow:5000",
        mlflow_artifacts="s3://bucket/mlflow",
        mlflow_ui_base="https://mlflow.example.com",
        champion_reruns=3,
        git_commit="abc123",
    )
    assert s.daily_run == (dt.time(19, 0), frozenset(range(5)))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ALPHADAG_HISTORY_START", "2010/01/01", "ALPHADAG_HISTORY_START must be YYYY-MM-DD"),
        ("ALPHADAG_SOURCE", "bloomberg", "ALPHADAG_SOURCE must be one of sample, synthetic"),
        ("ALPHADAG_TIMEZONE", "Mars/Olympus", "ALPHADAG_TIMEZONE must be an IANA time zone"),
        ("ALPHADAG_CHAMPION_RERUNS", "0", "ALPHADAG_CHAMPION_RERUNS must be a positive integer"),
        ("ALPHADAG_CHAMPION_RERUNS", "five", "ALPHADAG_CHAMPION_RERUNS must be a positive"),
        ("ALPHADAG_DAILY_CRON", "*/5 18 * * 1-5", "ALPHADAG_DAILY_CRON must be 'M H * * DOW'"),
        ("ALPHADAG_DAILY_CRON", "30 18 1 * *", "ALPHADAG_DAILY_CRON must be 'M H * * DOW'"),
        ("ALPHADAG_DAILY_CRON", "30 18 * * 1-9", "weekdays are 0-7"),
        ("ALPHADAG_DAILY_CRON", "30 18 * * 1/2", "cannot read the weekday field"),
    ],
)
def test_a_bad_value_is_rejected_naming_the_variable(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        Settings.from_env({name: value})
    assert repr(value) in str(err.value)


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ValueError) as err:
        Settings.from_env({"ALPHADAG_HISTORY_START": "x", "ALPHADAG_SOURCE": "y"})
    assert "ALPHADAG_HISTORY_START" in str(err.value)
    assert "ALPHADAG_SOURCE" in str(err.value)


def test_daily_cron_weekdays():
    assert parse_daily_cron("0 6 * * 6").weekdays == {5}  # Saturday
    assert parse_daily_cron("0 6 * * 0").weekdays == parse_daily_cron("0 6 * * 7").weekdays == {6}
    assert parse_daily_cron("0 6 * * *").weekdays == set(range(7))
    assert parse_daily_cron("5 7 * * 1,3,sat,SUN") == (dt.time(7, 5), {0, 2, 5, 6})


def test_loaded_without_a_load_names_the_ways_to_load(monkeypatch):
    monkeypatch.setattr(settings, "_loaded", None)
    with pytest.raises(settings.SettingsNotLoaded, match=r"alphadag\.definitions\.defs\(\)"):
        settings.loaded()


def test_each_load_reads_the_environment_again(monkeypatch):
    monkeypatch.setattr(settings, "_loaded", None)
    first = settings.load({})
    assert settings.loaded() is first and first.history_start == dt.date(2010, 1, 1)
    monkeypatch.setenv("ALPHADAG_HISTORY_START", "2024-01-02")
    assert settings.load().history_start == dt.date(2024, 1, 2)
    assert settings.loaded().history_start == dt.date(2024, 1, 2)


def test_definitions_read_the_settings_when_they_load(monkeypatch):
    """A changed variable takes effect at the next defs() call (a code-location reload), in the
    same process: partitions, schedule, freshness deadline and the landing sensor's default
    status all follow it; an unchanged environment keeps the imported objects."""
    from alphadag.definitions import defs

    kept = {n: m for n, m in sys.modules.items() if n.startswith("alphadag.defs")}
    kept_settings = settings._loaded
    try:
        first = defs()
        assert first.resolve_job_def("daily_job").partitions_def.start.date() == dt.date(2010, 1, 1)
        monkeypatch.setenv("ALPHADAG_HISTORY_START", "2015-01-02")
        monkeypatch.setenv("ALPHADAG_DAILY_CRON", "30 23 * * 1-5")
        monkeypatch.setenv("ALPHADAG_SOURCE", "csv")
        old_partitions = sys.modules["alphadag.defs.automation.partitions"]
        storage = sys.modules["alphadag.defs.resources.storage"]
        second = defs()
        # the modules built from the changed settings and their importers are imported afresh;
        # the resources depend on none of them and stay, so objects held from them stay valid
        assert sys.modules["alphadag.defs.automation.partitions"] is not old_partitions
        assert sys.modules["alphadag.defs.resources.storage"] is storage
        bars = second.resolve_assets_def("bars")
        assert bars.partitions_def.start.date() == dt.date(2015, 1, 2)
        assert second.resolve_job_def("daily_job").partitions_def == bars.partitions_def
        assert (
            bars.specs_by_key[dg.AssetKey("bars")].freshness_policy.deadline_cron == "0 3 * * 2-6"
        )
        assert second.resolve_schedule_def("daily_schedule").cron_schedule == "30 23 * * 1-5"
        sensor = second.resolve_sensor_def("landing_zone_sensor")
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        built = sys.modules["alphadag.defs.automation.partitions"]
        defs()
        assert sys.modules["alphadag.defs.automation.partitions"] is built  # nothing re-imported
        # a run-time setting (read by resources, not by module-level objects) re-imports nothing:
        # objects held from this import (an IO manager, a resource class) stay the ones in use
        monkeypatch.setenv("ALPHADAG_DATA_ROOT", "/elsewhere")
        monkeypatch.setenv("ALPHADAG_TICKERS", "AAPL")
        defs()
        assert sys.modules["alphadag.defs.automation.partitions"] is built
        assert sys.modules["alphadag.defs.resources.storage"] is storage
        monkeypatch.setenv("ALPHADAG_HISTORY_START", "2010/01/01")
        with pytest.raises(ValueError, match="ALPHADAG_HISTORY_START must be YYYY-MM-DD"):
            defs()
    finally:
        for name in [n for n in sys.modules if n.startswith("alphadag.defs")]:
            del sys.modules[name]
        sys.modules.update(kept)
        for name, module in kept.items():  # the parents' attributes, as an import sets them
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)
        settings._loaded = kept_settings


_IMPORT_SPY = """
import importlib, json, os, pkgutil, sys

reads, active = [], [False]
plain = os._Environ.__getitem__
LIBRARY = {"os", "collections.abc", "_collections_abc", "__main__"}


def spied(self, key):
    frame = sys._getframe(1)
    calls = set()
    while frame.f_globals.get("__name__") in LIBRARY:
        calls.add(frame.f_code.co_name)
        frame = frame.f_back
    name = frame.f_globals.get("__name__", "")
    # setdefault gives a library a default (MLflow telemetry off), it reads no setting of ours
    if active[0] and "setdefault" not in calls and name.split(".")[0] == "alphadag":
        reads.append(f"{name}:{frame.f_lineno} reads {key}")
    return plain(self, key)


os._Environ.__getitem__ = spied
import alphadag
from alphadag import settings

settings.load()  # the definitions-load read, as alphadag.definitions.defs makes it
active[0] = True
names = sorted(m.name for m in pkgutil.walk_packages(alphadag.__path__, "alphadag."))
for name in names:
    if name != "alphadag.preload":  # its purpose: load the definitions in a forkserver
        importlib.import_module(name)
imported = len(names)
at_import = list(reads)
from alphadag.definitions import defs
defs()
at_load = sorted({r.split(":")[0] for r in reads[len(at_import):]})
print(json.dumps({"imported": imported, "at_import": at_import, "at_load": at_load}))
"""


def test_importing_every_module_reads_no_variable():
    """Every alphadag module imported with os.environ spied: none reads a variable at import;
    loading the definitions does, in alphadag.settings."""
    out = (
        subprocess.run(
            [sys.executable, "-c", _IMPORT_SPY], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    found = json.loads(out)
    assert found["imported"] > 60
    assert found["at_import"] == []
    assert "alphadag.settings" in found["at_load"]


def test_the_table_lists_every_variable_once():
    table = Settings.table()
    for name in VARIABLES:
        assert table.count(f"| `{name}` |") == 1, name
    assert "`ALPHADAG_ALERT_WEBHOOK_URL`" in table
    assert settings.__doc__ is not None and table in settings.__doc__


def test_readme_configuration_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    lines = [ln for ln in section.strip().splitlines()]
    table = "\n".join(lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("|"))])
    assert table == Settings.table()


def _module_level_environ_reads(tree: ast.Module) -> list[int]:
    """Lines outside any function that read ``os.environ`` / ``os.getenv`` (setdefault, which
    gives a third-party library a default, is not a read of our settings)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
            inside.update(id(d) for d in getattr(node, "decorator_list", []))
    lines = []
    for node in ast.walk(tree):
        if id(node) in inside or not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id == "os" and node.attr == "getenv":
            lines.append(node.lineno)
        environ = isinstance(value, ast.Attribute) and value.attr == "environ"
        if environ and node.attr != "setdefault":
            lines.append(node.lineno)
    return lines


def test_no_module_reads_the_environment_at_import():
    found = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := _module_level_environ_reads(ast.parse(path.read_text())))
    }
    assert found == {}


# -- the freshness deadline follows the schedule ---------------------------------------------


def test_default_deadline_is_22_new_york_on_weekdays():
    d = Deadline.after("30 18 * * 1-5", "America/New_York")
    assert (d.cron, d.time) == ("0 22 * * 1-5", dt.time(22, 0))
    assert d.policy().timezone == "America/New_York"


def test_a_late_cron_moves_the_deadline_past_the_tick():
    d = Deadline.after("30 23 * * 1-5", "America/New_York")
    assert d.cron == "0 3 * * 2-6"  # Tuesday..Saturday 03:00: after each weekday's 23:30 tick
    policy = d.policy()
    assert (policy.deadline_cron, policy.timezone) == ("0 3 * * 2-6", "America/New_York")
    ny = dt.timezone(dt.timedelta(hours=-4))  # EDT
    # Tuesday 02:59: Monday's deadline (Tue 03:00) has not passed, Friday's has
    assert d.last_run_day(dt.datetime(2024, 7, 9, 2, 59, tzinfo=ny)) == dt.date(2024, 7, 5)
    assert d.last_run_day(dt.datetime(2024, 7, 9, 3, 0, tzinfo=ny)) == dt.date(2024, 7, 8)


def test_deadline_uses_the_schedule_timezone():
    d = Deadline.after("15 17 * * 1-5", "Europe/London")
    assert (d.cron, d.timezone) == ("45 20 * * 1-5", "Europe/London")


def test_module_policy_follows_the_environment(monkeypatch):
    monkeypatch.setenv("ALPHADAG_DAILY_CRON", "30 23 * * 1-5")
    settings.load()
    try:
        reloaded = importlib.reload(freshness)
        assert reloaded.DAILY_FRESHNESS.deadline_cron == "0 3 * * 2-6"
    finally:
        monkeypatch.undo()
        settings.load()
        importlib.reload(freshness)
    assert freshness.DAILY_FRESHNESS.deadline_cron == "0 22 * * 1-5"


@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    days=st.sets(st.integers(0, 6), min_size=1),
)
def test_deadline_is_the_margin_after_every_tick(hour, minute, days):
    cron = f"{minute} {hour} * * {','.join(str((d + 1) % 7) for d in sorted(days))}"
    d = Deadline.after(cron, "America/New_York")
    deadline = parse_daily_cron(d.cron)
    for day in days:
        tick = dt.datetime(2024, 1, 1 + day, hour, minute)  # 2024-01-01 is a Monday
        due = tick + FRESHNESS_MARGIN
        assert deadline.time == due.time()
        assert due.weekday() in deadline.weekdays
        # a state seen at the deadline belongs to the tick's day, a minute before to an earlier one
        assert d.last_run_day(due.replace(tzinfo=NY)) == tick.date()
        assert d.last_run_day((due - dt.timedelta(minutes=1)).replace(tzinfo=NY)) < tick.date()
