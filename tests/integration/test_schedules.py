"""``daily_schedule`` evaluated at real tick times: sessions only, run key = session."""

from __future__ import annotations

import datetime as dt
import importlib
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from alphadag import settings
from alphadag.defs.automation import schedules
from alphadag.defs.automation.schedules import DAILY_RUN_PRIORITY, daily_schedule

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def sched_instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="module")
def tick(defs, sched_instance):
    """Evaluate ``daily_schedule`` at ``when`` with the code location's repository."""
    repo = defs.get_repository_def()

    def evaluate(when: dt.datetime):
        ctx = dg.build_schedule_context(
            instance=sched_instance, scheduled_execution_time=when, repository_def=repo
        )
        return daily_schedule.evaluate_tick(ctx)

    return evaluate


def test_defaults_after_the_us_close():
    assert daily_schedule.cron_schedule == "30 18 * * 1-5"
    assert daily_schedule.execution_timezone == "America/New_York"
    assert daily_schedule.job_name == "daily_job"


def test_session_gives_one_request_keyed_by_session(tick):
    result = tick(dt.datetime(2024, 7, 3, 18, 30, tzinfo=NY))
    assert result.skip_message is None
    [req] = result.run_requests
    assert req.partition_key == "2024-07-03"
    assert req.run_key == "2024-07-03"
    assert req.job_name in (None, "daily_job")
    assert int(req.tags["dagster/priority"]) == DAILY_RUN_PRIORITY > 0


def test_tick_in_utc_maps_to_the_new_york_date(tick):
    # 18:30 New York on 2024-01-05 (EST) is 23:30 UTC the same day.
    when = dt.datetime(2024, 1, 5, 23, 30, tzinfo=dt.UTC)
    [req] = tick(when).run_requests
    assert req.partition_key == "2024-01-05"


@pytest.mark.parametrize(
    ("when", "why"),
    [
        (dt.datetime(2024, 7, 4, 18, 30, tzinfo=NY), "Independence Day"),
        (dt.datetime(2024, 12, 25, 18, 30, tzinfo=NY), "Christmas"),
        (dt.datetime(2024, 7, 6, 18, 30, tzinfo=NY), "Saturday"),
        (dt.datetime(2024, 7, 7, 18, 30, tzinfo=NY), "Sunday"),
    ],
)
def test_closed_days_skip(tick, when, why):
    result = tick(when)
    assert result.run_requests == [], why
    assert "not an XNYS session" in result.skip_message
    assert when.date().isoformat() in result.skip_message


def test_same_tick_twice_gives_the_same_run_key(tick):
    """A restarted daemon re-evaluating a tick produces the same run key; the scheduler daemon
    skips a request whose ``dagster/run_key`` (for this schedule) already has a run."""
    when = dt.datetime(2024, 3, 15, 18, 30, tzinfo=NY)
    first = tick(when).run_requests
    second = tick(when).run_requests
    assert [r.run_key for r in first] == [r.run_key for r in second] == ["2024-03-15"]
    assert first[0].partition_key == second[0].partition_key


def test_request_resolves_against_daily_job_partitions(defs, tick):
    """The request's partition is a real ``daily_job`` partition (no off-calendar key)."""
    job = defs.resolve_job_def("daily_job")
    [req] = tick(dt.datetime(2024, 3, 15, 18, 30, tzinfo=NY)).run_requests
    assert job.partitions_def.has_partition_key(req.partition_key)


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("ALPHADAG_DAILY_CRON", "15 17 * * 1-5")
    monkeypatch.setenv("ALPHADAG_TIMEZONE", "Europe/London")
    settings.load()  # what alphadag.definitions.defs does when the definitions load
    try:
        reloaded = importlib.reload(schedules)
        assert reloaded.daily_schedule.cron_schedule == "15 17 * * 1-5"
        assert reloaded.daily_schedule.execution_timezone == "Europe/London"
    finally:
        monkeypatch.undo()
        settings.load()
        importlib.reload(schedules)


def test_bad_timezone_is_rejected():
    with pytest.raises(ValueError, match="ALPHADAG_TIMEZONE"):
        settings.Settings.from_env({"ALPHADAG_TIMEZONE": "Mars/Olympus"})
