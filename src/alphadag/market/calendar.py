"""The exchange calendar: XNYS trading sessions from ``exchange-calendars``.

Partitions are trading sessions only. :func:`sessions` lists them, :func:`excluded_weekdays` gives the
weekday holidays a ``DailyPartitionsDefinition`` must exclude, and :func:`session_on_or_after` maps a
delivered date that is not a session (a vendor's Saturday row, say) to the partition that receives it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

DEFAULT_CALENDAR = "XNYS"


@lru_cache(maxsize=8)
def _calendar(name: str, start: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name, start=start)


def calendar(name: str = DEFAULT_CALENDAR, start: dt.date | str = "1990-01-01"):
    """The (cached) ``exchange_calendars`` calendar ``name`` starting at ``start``."""
    return _calendar(name, str(start))


def sessions(
    start: dt.date | str, end: dt.date | str, name: str = DEFAULT_CALENDAR
) -> list[dt.date]:
    """Trading sessions between ``start`` and ``end`` inclusive, clipped to the calendar's bounds.

    >>> [d.isoformat() for d in sessions("2022-12-23", "2022-12-28")]
    ['2022-12-23', '2022-12-27', '2022-12-28']
    """
    cal = calendar(name)
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if lo > hi:
        return []
    return [ts.date() for ts in cal.sessions_in_range(lo, hi)]


def is_session(day: dt.date, name: str = DEFAULT_CALENDAR) -> bool:
    """Whether ``day`` is a trading session.

    >>> is_session(dt.date(2022, 12, 26)), is_session(dt.date(2022, 12, 27))
    (False, True)
    """
    cal = calendar(name)
    ts = pd.Timestamp(day)
    if ts < cal.first_session or ts > cal.last_session:
        return False
    return bool(cal.is_session(ts))


def excluded_weekdays(start: dt.date | str, name: str = DEFAULT_CALENDAR) -> list[dt.datetime]:
    """Weekdays from ``start`` to the calendar's end that are not sessions (holidays, closures)."""
    cal = calendar(name)
    days = pd.date_range(pd.Timestamp(start), cal.last_session, freq="B")
    session_set = set(cal.sessions)
    return [d.to_pydatetime() for d in days if d not in session_set]


def session_on_or_after(day: dt.date, name: str = DEFAULT_CALENDAR) -> dt.date | None:
    """The first session on or after ``day``, or ``None`` past the calendar's end.

    >>> session_on_or_after(dt.date(2022, 12, 24)).isoformat()
    '2022-12-27'
    """
    cal = calendar(name)
    ts = pd.Timestamp(day)
    if ts > cal.last_session:
        return None
    if ts < cal.first_session:
        return cal.first_session.date()
    return cal.date_to_session(ts, direction="next").date()


def as_date(value: object, what: str) -> dt.date:
    """``value`` as a ``datetime.date`` (a date or an ISO string), with an error naming ``what``.

    >>> as_date("2024-01-31", "start")
    datetime.date(2024, 1, 31)
    """
    if isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime.date, not a datetime ({value!r}); use .date()")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO date like '2024-01-31'") from None
    raise TypeError(f"{what} must be a datetime.date or ISO string, got {type(value).__name__}")
