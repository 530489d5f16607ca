"""The Parquet partition IO manager: one file per asset and session, written atomically.

An asset returns one ``pl.DataFrame`` for its whole partition range; the IO manager splits it by the
asset's partition column (definition metadata built by
:func:`alphadag.storage.meta.storage_metadata`, default ``date``) and replaces exactly the files
of the run's partitions, writing an empty file (with the schema) for a session with no rows. Each
partition's materialization gets its own file's ``rows`` (also ``dagster/row_count``), ``bytes``,
``path`` and, where there is a ``ticker`` column, ``tickers``. Inputs load the upstream partitions
the partition mapping asks for, concatenated in date order. An unpartitioned asset
(``training_set``) is one file, ``<root>/<asset>/<asset>.parquet``, replaced atomically in the same
way.

Write-audit-publish: an asset with blocking checks returns :class:`Audited` instead of a bare frame.
The IO manager stages the run's partitions under ``<root>/_staging/<asset>/<run id>/``, reads them
back, runs the asset's audit on what was staged, and publishes (one rename per file) only the
sessions whose blocking checks all passed. A held session keeps its published file untouched and
its staged file for inspection (``staged_path`` in its materialization and check metadata), until
the session is next published. Downstream assets and every reader load published files only.

Errors: a stored partition that cannot be read fails the step at once (no retry) naming the asset,
session, path and how to rebuild it; a write that fails for good (disk full, read-only,
permission) fails at once naming the path, and a transient one may be retried by the asset's retry
policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from alphadag.defs.assets.session_checks import SessionOutcome
from alphadag.defs.partition_metadata import add_partition_metadata
from alphadag.storage import (
    STAGING,
    CorruptPartitionError,
    PartitionStore,
    PartitionWriteError,
    WrittenPartition,
    meta,
    split_by_partition,
)

Outcomes = Mapping[str, SessionOutcome | tuple[bool, Mapping[str, Any]]]
"""One check's outcome per session (partition key)."""


@dataclass(eq=False)
class Audited:
    """A partitioned frame to write, audit and publish: what an asset with blocking checks returns.

    frame: the asset's rows for the run's sessions.
    audit: called with the staged rows read back from storage; returns, per check name, the
        check's outcome per session (or one SessionOutcome / (passed, metadata) for every
        session, for an unpartitioned check).
    blocking: names of the checks whose failure holds a session back from publication.

    Filled in by the IO manager: outcomes (what audit returned), published (sessions whose files
    were replaced) and held (session -> staged path, for sessions that failed a blocking check).
    """

    frame: pl.DataFrame
    audit: Callable[[pl.DataFrame], Mapping[str, Any]]
    blocking: frozenset[str]
    outcomes: dict[str, Any] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)

    def session_outcomes(self, check_name: str, sessions: list[str]) -> dict[str, SessionOutcome]:
        """The check's outcome per session, each with ``published`` and, when held back,
        ``staged_path`` added to its metadata (for session_check_results)."""
        raw = self.outcomes[check_name]
        out = {}
        for session in sessions:
            o = _as_outcome(raw.get(session) if isinstance(raw, Mapping) else raw)
            extra: dict[str, Any] = {"published": session not in self.held}
            if session in self.held:
                extra["staged_path"] = dg.MetadataValue.path(self.held[session])
            out[session] = SessionOutcome(o.passed, {**o.metadata, **extra}, o.description)
        return out

    def failed_sessions(self, sessions: list[str]) -> set[str]:
        """Sessions that failed a blocking check."""
        failed = set()
        for name in self.blocking:
            raw = self.outcomes.get(name)
            if raw is None:
                continue
            for session in sessions:
                value = raw.get(session) if isinstance(raw, Mapping) else raw
                if value is not None and not _as_outcome(value).passed:
                    failed.add(session)
        return failed


def _as_outcome(value: Any) -> SessionOutcome:
    if isinstance(value, SessionOutcome):
        return value
    if value is None:
        return SessionOutcome(True, {})
    passed, metadata = value
    return SessionOutcome(bool(passed), dict(metadata))


def _file_metadata(w: WrittenPartition, frame: pl.DataFrame) -> dict:
    """What one partition's file holds: rows, bytes, path and, with a ticker column, tickers."""
    figures = {
        "rows": w.rows,
        "dagster/row_count": w.rows,
        "bytes": w.bytes,
        "path": dg.MetadataValue.path(w.path),
    }
    if "ticker" in frame.columns:
        figures["tickers"] = frame["ticker"].n_unique()
    return figures


def _rebuild_hint(asset: str, day: dt.date | None, job: str | None) -> str:
    """How to rebuild a stored partition: its job (an asset that cannot be materialized alone,
    definition metadata ``meta.REBUILD_JOB``) or the asset itself."""
    if day is None:
        return f"rebuild it: dg launch --assets {asset}"
    if job:
        return (
            f"rebuild it by re-running that session: "
            f"alphadag materialize --job {job} --start {day} --end {day}"
        )
    return (
        f"rebuild it by re-materializing that session: dg launch --assets {asset} --partition {day}"
    )


def _write_failure(asset: str, err: PartitionWriteError) -> dg.Failure:
    return dg.Failure(
        description=f"{asset}: {err}",
        metadata={"path": dg.MetadataValue.path(err.path), "errno": err.errno or 0},
        allow_retries=not err.permanent,
    )


class ParquetPartitionIOManager(dg.ConfigurableIOManager):
    """Partitioned polars frames as Parquet files under data_root (local path or fsspec URL).

    Assets with blocking checks return Audited frames: staged, audited, then published session by
    session (write-audit-publish); readers see published files only.
    """

    data_root: str

    @property
    def store(self) -> PartitionStore:
        """The partition store under ``data_root``: public API for an asset that reads a range
        of sessions that is not a partition range of its own (``training_set``,
        ``backtest_report``), through ``sessions`` / ``read`` / ``scan``."""
        return PartitionStore(self.data_root)

    @staticmethod
    def _dataset(key: dg.AssetKey) -> str:
        return "__".join(key.path)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | Audited) -> None:
        asset = context.asset_key.to_user_string()
        frame = obj.frame if isinstance(obj, Audited) else obj
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(f"{asset} must return a polars DataFrame")
        try:
            if not context.has_asset_partitions:
                w = self.store.write_table(self._dataset(context.asset_key), frame)
                context.add_output_metadata(
                    {
                        "rows": w.rows,
                        "bytes_written": w.bytes,
                        "path": dg.MetadataValue.path(w.path),
                    }
                )
                return
            days = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
            column = meta.partition_column(context.definition_metadata)
            parts = split_by_partition(frame, column, days)
            if isinstance(obj, Audited):
                metadata = self._write_audit_publish(context, obj, parts)
            else:
                written = self.store.write_many(self._dataset(context.asset_key), parts)
                metadata = {
                    day.isoformat(): _file_metadata(w, parts[day])
                    for day, w in zip(sorted(parts), written, strict=True)
                }
        except PartitionWriteError as err:
            raise _write_failure(asset, err) from err
        # each partition's materialization carries its own file's figures, not the run's totals
        add_partition_metadata(context, context.asset_key, metadata)
        if len(metadata) > 1:
            context.log.info(
                f"{asset}: {len(metadata)} partitions, "
                f"{sum(m['rows'] for m in metadata.values())} rows, "
                f"{sum(m['bytes'] for m in metadata.values())} bytes written"
            )

    def _write_audit_publish(
        self, context: dg.OutputContext, obj: Audited, parts: dict[dt.date, pl.DataFrame]
    ) -> dict[str, dict]:
        """Stage ``parts``, audit what was staged, publish the sessions that passed."""
        asset, dataset = context.asset_key.to_user_string(), self._dataset(context.asset_key)
        run_id = context.run_id
        days = sorted(parts)
        sessions = [d.isoformat() for d in days]
        staged = self.store.stage_many(dataset, run_id, parts)
        try:
            obj.outcomes = dict(obj.audit(self.store.read_staged(dataset, run_id, days)))
        except BaseException:
            self.store.discard_staged(dataset, run_id)
            raise
        failed = obj.failed_sessions(sessions)
        published = [d for d in days if d.isoformat() not in failed]
        paths = dict(zip(published, self.store.publish(dataset, run_id, published), strict=True))
        obj.published = [d.isoformat() for d in published]
        obj.held = {
            d.isoformat(): w.path for d, w in zip(days, staged, strict=True) if d not in paths
        }
        if obj.held:
            held = sorted(obj.held)
            context.log.warning(
                f"{asset}: {len(held)} of {len(days)} sessions failed a blocking check and were "
                f"not published ({', '.join(held[:10])}{', ...' if len(held) > 10 else ''}); "
                f"their published files are unchanged, staged files kept under "
                f"{self.store.root / STAGING / dataset / run_id}"
            )
        metadata = {}
        for day, w in zip(days, staged, strict=True):
            file_meta = _file_metadata(w, parts[day])
            if day in paths:
                file_meta["path"] = dg.MetadataValue.path(paths[day])
                file_meta["published"] = True
            else:
                file_meta["path"] = dg.MetadataValue.path(str(self.store.path(dataset, day)))
                file_meta["published"] = False
                file_meta["staged_path"] = dg.MetadataValue.path(w.path)
            metadata[day.isoformat()] = file_meta
        return metadata

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        asset = context.asset_key.to_user_string()
        try:
            return self._load(context)
        except CorruptPartitionError as err:
            upstream = context.upstream_output
            job = meta.rebuild_job(upstream.definition_metadata) if upstream else None
            raise dg.Failure(
                description=f"{asset}: {err}; {_rebuild_hint(asset, err.day, job)}",
                metadata={"path": dg.MetadataValue.path(err.path)},
                allow_retries=False,
            ) from err
        except FileNotFoundError as err:
            raise dg.Failure(
                description=f"{asset}: {err}; materialize it first (or the range it belongs to)",
                allow_retries=False,
            ) from err

    def _load(self, context: dg.InputContext) -> pl.DataFrame:
        if not context.has_asset_partitions:
            return self.store.read_table(self._dataset(context.asset_key))
        days = [dt.date.fromisoformat(k) for k in context.asset_partition_keys]
        dataset = self._dataset(context.asset_key)
        if not meta.window_optional(context.definition_metadata):
            return self.store.read(dataset, days)
        # A lookback/lookahead window: partitions outside the run's own range may be absent (the
        # first sessions of a history, the sessions after today); the run's own ones must exist.
        own_range = context.step_context.partition_key_range
        first, last = dt.date.fromisoformat(own_range.start), dt.date.fromisoformat(own_range.end)
        own = [d for d in days if first <= d <= last]
        frame = self.store.read(dataset, own)
        before = [d for d in days if d < first]
        after = [d for d in days if d > last]
        parts = [
            self.store.read(dataset, before, missing_ok=True, empty_like=frame) if before else None,
            frame,
            self.store.read(dataset, after, missing_ok=True, empty_like=frame) if after else None,
        ]
        return pl.concat([p for p in parts if p is not None])
