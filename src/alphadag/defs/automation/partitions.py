"""Partitions: one per XNYS trading session from ``ALPHADAG_HISTORY_START`` (default 2010-01-01).

Weekends and exchange holidays are excluded, so a holiday is never a partition. Tickers are rows
inside a partition, never partitions themselves.

The asset decorators take ``sessions_partitions`` as a value when their module is imported, and
every partitioned asset, check and job must hold the same object, so it is built when this
module is imported, from the settings ``alphadag.definitions.defs`` has just read
(:func:`alphadag.settings.loaded`); a later ``defs()`` call that reads other settings imports the
``defs`` folder afresh.
"""

import datetime as dt

import dagster as dg

from alphadag import settings
from alphadag.market.calendar import excluded_weekdays

WEEKEND_CRONS = ["0 0 * * 6", "0 0 * * 0"]

BUILT_FROM = settings.loaded()
"""The settings this module's objects were built from."""
_HISTORY_START = BUILT_FROM.history_start

sessions_partitions = dg.DailyPartitionsDefinition(
    start_date=_HISTORY_START.isoformat(),
    # today's session is a partition from midnight UTC on, so the after-close schedule can run it
    end_offset=1,
    exclusions=[*WEEKEND_CRONS, *excluded_weekdays(_HISTORY_START)],
)

full_history_backfill = dg.BackfillPolicy.single_run()
"""Ranged runs (backfills) execute as one run over the whole range."""


def partition_days(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> list[dt.date]:
    """The session dates of the run's partition range."""
    return [dt.date.fromisoformat(k) for k in context.partition_keys]


def _sessions_to_calendar_end() -> int:
    from alphadag.market.calendar import calendar, sessions

    return len(sessions(_HISTORY_START, calendar().last_session.date()))


FROM_FIRST_SESSION = -_sessions_to_calendar_end()
"""A partition-mapping start offset that reaches back to the first session from any partition."""
