"""The definition-metadata keys the Parquet partition IO manager obeys, typed in one place.

An asset (or an output, or an input) tells the IO manager how to store or load it through Dagster
definition metadata. Build that metadata with :func:`storage_metadata` (never type the keys by
hand) and read it back with :func:`partition_column`, :func:`window_optional` and
:func:`rebuild_job`:

- ``PARTITION_COLUMN`` (output): the date column that assigns a row to its partition (default
  ``date``; ``raw_bars`` uses ``partition_date``).
- ``WINDOW_OPTIONAL`` (input): the input is a lookback/lookahead window whose partitions outside
  the run's own range may be absent (the first sessions of a history, the sessions after today).
- ``REBUILD_JOB`` (output): the job that rebuilds a damaged partition, for an asset that cannot be
  materialized alone; named in the error that reports the damage.

>>> storage_metadata(partition_column="partition_date", rebuild_job="ingest_job")
{'alphadag/partition_column': 'partition_date', 'alphadag/rebuild_job': 'ingest_job'}
>>> window_optional(storage_metadata(window_optional=True)), partition_column(None)
(True, 'date')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARTITION_COLUMN = "alphadag/partition_column"
WINDOW_OPTIONAL = "alphadag/window_optional"
REBUILD_JOB = "alphadag/rebuild_job"
DEFAULT_PARTITION_COLUMN = "date"


def storage_metadata(
    *,
    partition_column: str | None = None,
    window_optional: bool = False,
    rebuild_job: str | None = None,
) -> dict[str, Any]:
    """Definition metadata for the IO manager (only the keys given; merge with others by ``**``).

    partition_column: the column whose date is each row's partition (outputs).
    window_optional: the input's partitions outside the run's own range may be missing (inputs).
    rebuild_job: the job that rebuilds a damaged partition of this output.

    >>> storage_metadata(window_optional=True)
    {'alphadag/window_optional': True}
    """
    if partition_column is not None and not (
        isinstance(partition_column, str) and partition_column
    ):
        raise TypeError(f"partition_column must be a column name, got {partition_column!r}")
    if not isinstance(window_optional, bool):
        raise TypeError(f"window_optional must be a bool, got {window_optional!r}")
    if rebuild_job is not None and not (isinstance(rebuild_job, str) and rebuild_job):
        raise TypeError(f"rebuild_job must be a job name, got {rebuild_job!r}")
    meta: dict[str, Any] = {}
    if partition_column is not None:
        meta[PARTITION_COLUMN] = partition_column
    if window_optional:
        meta[WINDOW_OPTIONAL] = True
    if rebuild_job is not None:
        meta[REBUILD_JOB] = rebuild_job
    return meta


def partition_column(metadata: Mapping[str, Any] | None) -> str:
    """The partition column named by ``metadata`` (``date`` when it names none)."""
    return (metadata or {}).get(PARTITION_COLUMN, DEFAULT_PARTITION_COLUMN)


def window_optional(metadata: Mapping[str, Any] | None) -> bool:
    """Whether ``metadata`` marks an input as a window whose outer partitions may be missing."""
    return bool((metadata or {}).get(WINDOW_OPTIONAL, False))


def rebuild_job(metadata: Mapping[str, Any] | None) -> str | None:
    """The job ``metadata`` names to rebuild a damaged partition (``None``: the asset itself)."""
    return (metadata or {}).get(REBUILD_JOB)
