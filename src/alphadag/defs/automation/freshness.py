"""Freshness expectations of the daily tables, shared by their asset decorators and the alert sensor.

``DAILY_FRESHNESS`` is a Dagster 1.13 ``FreshnessPolicy.cron`` that follows ``daily_schedule``:
its deadline is the daily tick (``ALPHADAG_DAILY_CRON``, in ``ALPHADAG_TIMEZONE``) plus
``FRESHNESS_MARGIN`` (3.5 h: 22:00 New York for the default 18:30 tick), on the days the schedule
runs, shifted to the next day when the deadline passes midnight; the asset must have
materialized within the 24 hours before it. The instance's freshness daemon (``freshness:
enabled`` in ``dagster.yaml``) evaluates it and records each change of state as a
``FRESHNESS_STATE_CHANGE`` event; ``freshness_alert_sensor`` (``automation/alerts.py``) turns those
into alerts. Like the schedule, the policy is built from the settings read
when the definitions load (:func:`alphadag.settings.loaded`; asset decorators take it as a value).

The cron knows weekdays, not exchange holidays: on an XNYS holiday the state turns ``FAIL`` at the
deadline although nothing is late. :func:`deadline_session` names the session a deadline belongs
to, so the sensor can tell an expected holiday failure from a real one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from alphadag import settings
from alphadag.market.calendar import is_session

FRESHNESS_MARGIN = dt.timedelta(hours=3, minutes=30)
"""How long after the daily tick the daily tables must be fresh (the run's time to finish)."""


def _cron_days(weekdays: frozenset[int]) -> str:
    """Cron day-of-week field of Python weekdays (Monday = 0), ranges collapsed: ``1-5``."""
    days = sorted((d + 1) % 7 for d in weekdays)
    if len(days) == 7:
        return "*"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


@dataclasses.dataclass(frozen=True)
class Deadline:
    """The freshness deadline of the daily run: ``margin`` after its tick, in its time zone.

    >>> d = Deadline.after("30 18 * * 1-5", "America/New_York")
    >>> d.cron, d.last_run_day(dt.datetime(2024, 7, 6, 12, 0, tzinfo=dt.UTC))  # Sat -> Fri
    ('0 22 * * 1-5', datetime.date(2024, 7, 5))
    >>> late = Deadline.after("30 23 * * 1-5", "America/New_York")  # 03:00 the next day
    >>> late.cron, late.last_run_day(dt.datetime(2024, 7, 9, 6, 30, tzinfo=dt.UTC))  # Tue 02:30
    ('0 3 * * 2-6', datetime.date(2024, 7, 5))
    """

    run_time: dt.time
    weekdays: frozenset[int]
    timezone: str
    margin: dt.timedelta = FRESHNESS_MARGIN

    @classmethod
    def after(cls, cron: str, timezone: str, margin: dt.timedelta = FRESHNESS_MARGIN) -> Deadline:
        """The deadline ``margin`` after the once-a-day ``cron`` (``"M H * * DOW"``)."""
        if not dt.timedelta(0) < margin < dt.timedelta(days=1):
            raise ValueError(f"margin must be between 0 and 24 hours, got {margin}")
        run = settings.parse_daily_cron(cron)
        return cls(run.time, run.weekdays, timezone, margin)

    @property
    def _offset(self) -> dt.timedelta:
        """From the run day's midnight to the deadline (may pass into the next day)."""
        t = self.run_time
        return dt.timedelta(hours=t.hour, minutes=t.minute) + self.margin

    @property
    def time(self) -> dt.time:
        """The local time of day of the deadline."""
        return (dt.datetime.min + self._offset).time()

    @property
    def cron(self) -> str:
        """The deadline as a cron: the run's weekdays, moved a day on when it passes midnight."""
        shift = self._offset.days
        days = frozenset((d + shift) % 7 for d in self.weekdays)
        return f"{self.time.minute} {self.time.hour} * * {_cron_days(days)}"

    def policy(self) -> dg.FreshnessPolicy:
        """Materialized in the 24 hours before each deadline."""
        return dg.FreshnessPolicy.cron(
            deadline_cron=self.cron,
            lower_bound_delta=dt.timedelta(hours=24),
            timezone=self.timezone,
        )

    def last_run_day(self, when: dt.datetime) -> dt.date:
        """The run day (local date of the tick) of the last deadline at or before ``when``."""
        if when.tzinfo is None:
            raise ValueError("last_deadline needs an aware datetime (got a naive one)")
        local = when.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        day = (local - self._offset).date()
        while day.weekday() not in self.weekdays:
            day -= dt.timedelta(days=1)
        return day


BUILT_FROM = settings.loaded()
"""The settings this module's objects were built from."""
DEADLINE = Deadline.after(BUILT_FROM.daily_cron, BUILT_FROM.timezone)
"""The deadline of this process's ``daily_schedule`` (default: weekdays 22:00 New York)."""
DEADLINE_TIMEZONE = DEADLINE.timezone
DEADLINE_TIME = DEADLINE.time
DEADLINE_CRON = DEADLINE.cron

DAILY_FRESHNESS = DEADLINE.policy()
"""Materialized in the 24 hours before each daily deadline (``bars``, ``features``, ...)."""


def last_deadline(when: dt.datetime) -> dt.date:
    """The run day of the last deadline at or before ``when`` (an aware datetime).

    With the default schedule (18:30, deadline 22:00 New York):

    >>> last_deadline(dt.datetime(2024, 7, 6, 12, 0, tzinfo=dt.UTC))  # Saturday -> Friday
    datetime.date(2024, 7, 5)
    >>> last_deadline(dt.datetime(2024, 7, 9, 2, 30, tzinfo=dt.UTC))  # Mon 22:30 New York
    datetime.date(2024, 7, 8)
    """
    return DEADLINE.last_run_day(when)


def deadline_session(when: dt.datetime) -> tuple[dt.date, bool]:
    """``(run day, whether it is an XNYS session)`` of the deadline a state seen at ``when`` is in.

    >>> deadline_session(dt.datetime(2024, 7, 5, 3, 0, tzinfo=dt.UTC))  # 4 July 23:00 New York
    (datetime.date(2024, 7, 4), False)
    """
    day = last_deadline(when)
    return day, is_session(day)
