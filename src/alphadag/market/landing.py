"""Pure change detection for a landing directory: which files are new or changed, and which
session partitions they touch, grouped into contiguous runs.

The ``landing_zone_sensor`` keeps a JSON cursor ``{path: sha256}``; a file whose content hash
differs from the cursor's is *changed* (a corrected vendor file), so it backfills the partitions it
touches and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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
