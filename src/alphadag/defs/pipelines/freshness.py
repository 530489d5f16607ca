"""Freshness expectations of the daily tables, shared by their asset decorators and the alert sensor.

``DAILY_FRESHNESS`` is a Dagster 1.13 ``FreshnessPolicy.cron``: on every weekday at
``DEADLINE_CRON`` (22:00 New York, 3.5 h after ``daily_schedule``'s 18:30 tick) the asset must have
materialized within the 24 hours before. The instance's freshness daemon (``freshness: enabled`` in
``dagster.yaml``) evaluates it and records each change of state as a ``FRESHNESS_STATE_CHANGE``
event; ``freshness_alert_sensor`` (``pipelines/alerts.py``) turns those into alerts.

The cron knows weekdays, not exchange holidays: on an XNYS holiday the state turns ``FAIL`` at the
deadline although nothing is late. :func:`deadline_session` names the deadline a state change
belongs to, so the sensor can tell an expected holiday failure from a real one.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from alphadag.market.calendar import is_session

DEADLINE_TIMEZONE = "America/New_York"
DEADLINE_TIME = dt.time(22, 0)
DEADLINE_CRON = f"{DEADLINE_TIME.minute} {DEADLINE_TIME.hour} * * 1-5"
"""Weekdays 22:00 New York: the daily run (18:30) has had 3.5 hours."""

DAILY_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=DEADLINE_CRON,
    lower_bound_delta=dt.timedelta(hours=24),
    timezone=DEADLINE_TIMEZONE,
)
"""Materialized in the 24 hours before each weekday deadline (``bars``, ``features``, ...)."""


def last_deadline(when: dt.datetime) -> dt.date:
    """The New York date of the last deadline tick at or before ``when`` (an aware datetime).

    >>> last_deadline(dt.datetime(2024, 7, 6, 12, 0, tzinfo=dt.UTC))  # Saturday -> Friday
    datetime.date(2024, 7, 5)
    >>> last_deadline(dt.datetime(2024, 7, 9, 2, 30, tzinfo=dt.UTC))  # Mon 22:30 New York
    datetime.date(2024, 7, 8)
    """
    if when.tzinfo is None:
        raise ValueError("last_deadline needs an aware datetime (got a naive one)")
    local = when.astimezone(ZoneInfo(DEADLINE_TIMEZONE))
    day = local.date() if local.time() >= DEADLINE_TIME else local.date() - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def deadline_session(when: dt.datetime) -> tuple[dt.date, bool]:
    """``(deadline date, whether it is an XNYS session)`` for a freshness state seen at ``when``.

    >>> deadline_session(dt.datetime(2024, 7, 5, 3, 0, tzinfo=dt.UTC))  # 4 July 23:00 New York
    (datetime.date(2024, 7, 4), False)
    """
    day = last_deadline(when)
    return day, is_session(day)
