"""Pure change detection for a landing directory: which files are new or changed, and which
session partitions they touch, grouped into contiguous runs.

The ``landing_zone_sensor`` keeps a JSON cursor ``{path: sha256}``; a file whose content hash
differs from the cursor's is *changed* (a corrected vendor file), so it backfills the partitions it
touches and nothing else. :func:`plan_tick` holds the cursor's rules once the changed files are
known: a reset cursor launches nothing, a file back at an ingested state gets a fresh run key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from alphadag.market.calendar import session_on_or_after


def parse_cursor(cursor: str | None) -> dict[str, str]:
    """The ``{path: sha256}`` mapping stored in a sensor cursor (empty for no cursor).

    >>> parse_cursor('{"a.csv": "ff"}')
    {'a.csv': 'ff'}
    """
    if not cursor:
        return {}
    data = json.loads(cursor)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"landing cursor must be a JSON object of path -> sha256, got {cursor!r}")
    return data


def dump_cursor(state: Mapping[str, str]) -> str:
    """Serialise a cursor deterministically (sorted keys)."""
    return json.dumps(dict(state), sort_keys=True)


def changed_files(current: Mapping[str, str], seen: Mapping[str, str]) -> list[str]:
    """Paths in ``current`` that are new or whose hash differs from ``seen``, sorted.

    >>> changed_files({"a": "1", "b": "2"}, {"a": "1", "b": "0"})
    ['b']
    """
    return sorted(p for p, sha in current.items() if seen.get(p) != sha)


def touched_partitions(dates: Iterable[dt.date], partition_keys: Sequence[str]) -> list[str]:
    """The partition keys (sessions) that rows dated ``dates`` land in, sorted.

    A non-session date lands in the next session, as in ``raw_bars``.

    >>> touched_partitions([dt.date(2022, 12, 24)], ["2022-12-23", "2022-12-27"])
    ['2022-12-27']
    """
    valid = set(partition_keys)
    out: set[str] = set()
    for day in dates:
        session = session_on_or_after(day)
        if session is not None and session.isoformat() in valid:
            out.add(session.isoformat())
    return sorted(out)


def contiguous_ranges(keys: Sequence[str], partition_keys: Sequence[str]) -> list[tuple[str, str]]:
    """Group ``keys`` into runs of consecutive partitions of ``partition_keys``.

    >>> contiguous_ranges(["b", "c", "e"], ["a", "b", "c", "d", "e"])
    [('b', 'c'), ('e', 'e')]
    """
    index = {k: i for i, k in enumerate(partition_keys)}
    ordered = sorted(set(keys), key=index.__getitem__)
    ranges: list[tuple[str, str]] = []
    for key in ordered:
        if ranges and index[key] == index[ranges[-1][1]] + 1:
            ranges[-1] = (ranges[-1][0], key)
        else:
            ranges.append((key, key))
    return ranges


@dataclass(frozen=True)
class LandingRun:
    """One run to launch: a contiguous partition range and a run key unique to the file contents."""

    start: str
    end: str
    run_key: str


def plan_runs(
    changed: Mapping[str, str], touched: Sequence[str], partition_keys: Sequence[str]
) -> list[LandingRun]:
    """Runs for the partitions ``touched`` by the ``changed`` files ``{path: sha256}``.

    The run key hashes the changed files' contents and the range, so the same files seen again
    launch nothing and a corrected file launches again.

    >>> [r.start for r in plan_runs({"a": "1"}, ["x", "y"], ["x", "y"])]
    ['x']
    """
    digest = hashlib.sha256(dump_cursor(changed).encode()).hexdigest()[:16]
    return [
        LandingRun(start, end, f"landing:{digest}:{start}:{end}")
        for start, end in contiguous_ranges(touched, partition_keys)
    ]


CursorRewind = Literal["cursor_reset", "file_reverted"]


@dataclass(frozen=True)
class TickPlan:
    """What a landing tick does with its planned runs: launch, new cursor, and any rewind found.

    ``runs`` carry their final run keys; ``held`` are the runs not launched on a ``cursor_reset``;
    ``rewound`` are the launched runs whose key was already used (``file_reverted``).
    """

    runs: tuple[LandingRun, ...]
    cursor: dict[str, str]
    rewind: CursorRewind | None = None
    held: tuple[LandingRun, ...] = ()
    rewound: tuple[LandingRun, ...] = ()


def plan_tick(
    runs: Sequence[LandingRun],
    seen: Mapping[str, str],
    judged: Mapping[str, str],
    *,
    launched_before: Callable[[], bool],
    key_used: Callable[[str], bool],
) -> TickPlan:
    """Apply the cursor rules to the ``runs`` planned for a tick (:func:`plan_runs`).

    Parameters:
        runs: the runs planned for the good new or changed files.
        seen: the cursor read at the start of the tick (``{path: sha256}``).
        judged: the fingerprints judged this tick (every current file, good or broken).
        launched_before: whether the instance holds runs this sensor launched (asked only
            when ``seen`` is empty).
        key_used: whether a run key was already used on the instance.

    Rules: an empty cursor while runs were launched before is a *cursor_reset*: every file would
    look new and re-ingest its whole range, so nothing is launched (``held`` lists the ranges)
    and the cursor restarts from ``judged``. Otherwise a run whose key was used before (the file
    is back at a state ingested before; the daemon would skip it silently) is launched under
    ``<run key>:rewound:<n>`` with the first unused ``n`` (*file_reverted*).

    >>> run = LandingRun("2024-01-02", "2024-01-03", "landing:ab:2024-01-02:2024-01-03")
    >>> plan = plan_tick([run], {"a.csv": "0"}, {"a.csv": "1"},
    ...                  launched_before=lambda: True, key_used={run.run_key}.__contains__)
    >>> plan.rewind, plan.runs[0].run_key, plan.cursor
    ('file_reverted', 'landing:ab:2024-01-02:2024-01-03:rewound:1', {'a.csv': '1'})
    >>> plan_tick([run], {}, {"a.csv": "1"}, launched_before=lambda: True,
    ...           key_used=lambda key: False).rewind
    'cursor_reset'
    """
    if not seen and launched_before():
        return TickPlan(runs=(), cursor=dict(judged), rewind="cursor_reset", held=tuple(runs))
    launched: list[LandingRun] = []
    for run in runs:
        key, n = run.run_key, 0
        while key_used(key):
            n += 1
            key = f"{run.run_key}:rewound:{n}"
        launched.append(replace(run, run_key=key))
    rewound = tuple(new for new, old in zip(launched, runs, strict=True) if new != old)
    return TickPlan(
        runs=tuple(launched),
        cursor={**seen, **judged},
        rewind="file_reverted" if rewound else None,
        rewound=rewound,
    )
