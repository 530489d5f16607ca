"""One asset-check evaluation per session, also in a ranged run.

A ranged run (``BackfillPolicy.single_run()``) of N sessions plans one ``asset_check_executions``
row per (check, session). ``AssetCheckResult`` has no partition: Dagster 1.13 evaluates it with the
step's partition key, which a range does not have, so a check returned that way records one
evaluation without a partition, the N planned rows never resolve, and the UI shows the sessions
as never checked. Dagster 1.13 has no public API for per-partition evaluations inside a ranged run;
this module works around that with these internals, called through alphadag.instance_storage (the
one module that imports Dagster's private API) (verified against
``dagster/_core/execution/plan/execute_step.py`` and ``dagster/_core/events/__init__.py``):

- An op may yield ``AssetCheckEvaluation`` objects (with ``partition=``) directly; the step turns
  them into ``ASSET_CHECK_EVALUATION`` events and fails the step on a failed, blocking, ERROR one.
  The check's op output must still be emitted (``Output(None, output_name=...)``), as Dagster does
  itself for an ``AssetCheckResult``; the output's name comes from the job's asset layer.
- The other sessions' evaluations are logged as one event batch:
  ``DagsterEvent.from_step(..., batch_metadata=DagsterEventBatchMetadata(batch_id, is_end))``
  logs the event when it is built (as Dagster does for a range's materializations), so an event
  log storage whose ``store_event_batch`` writes a batch in one transaction stores them together
  when ``DAGSTER_EVENT_BATCH_SIZE`` > 0; without it they are stored one by one. They are also
  yielded, so ``ExecuteInProcessResult`` lists every evaluation.
- The UI counts a partition's evaluation as current only if its ``target_materialization_data``
  points at that partition's latest materialization, so the storage id, run id and timestamp of
  every session's latest materialization are read with two queries for the whole range.

The representative evaluation, the first session whose failure blocks (failed, ERROR severity,
blocking check), else the last session, goes through Dagster's normal path, so its blocking logic
sees it; a session's failure still fails the step and stops downstream assets.

Callers compute each session's outcome from one pass over the whole range and pass a mapping
``session -> SessionOutcome`` (or ``(passed, metadata)``) to :func:`session_check_results`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from alphadag.instance_storage import (
    latest_materializations,
    log_evaluations_as_batch,
    step_context,
)

MAX_TABLE_ROWS = 20
"""Rows of a failure table kept in one session's metadata (failing sessions only)."""


@dataclass(frozen=True)
class SessionOutcome:
    """One session's result of a check: pass/fail and small metadata."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


def _outcome(value: SessionOutcome | tuple[bool, Mapping[str, Any]]) -> SessionOutcome:
    if isinstance(value, SessionOutcome):
        return value
    passed, metadata = value
    return SessionOutcome(bool(passed), metadata)


def session_check_results(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    asset_key: dg.AssetKey | str,
    check_name: str,
    outcomes: Mapping[str, SessionOutcome | tuple[bool, Mapping[str, Any]]],
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> Iterator[Any]:
    """Yield from the asset or check's body: one evaluation per session of ``outcomes``.

    ``outcomes`` maps each session (partition key) of the run to its outcome. Yields the check's
    output, the other sessions' evaluation events (logged as one batch) and the representative
    evaluation. Nothing is yielded for a check the run did not select.
    """
    key = dg.AssetCheckKey(dg.AssetKey.from_coercible(asset_key), check_name)
    results = {s: _outcome(v) for s, v in sorted(outcomes.items())}
    step = step_context(context)
    if step is None:  # a direct invocation: one result for all sessions
        failed = [s for s, r in results.items() if not r.passed]
        first = results[failed[0]] if failed else next(reversed(results.values()))
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=check_name,
            passed=not failed,
            severity=severity,
            metadata=first.metadata,
        )
        return

    output_name = step.job_def.asset_layer.get_op_output_name(key)
    if output_name is None or output_name not in step.selected_output_names:
        return
    spec = step.job_def.asset_layer.get_assets_def_for_node(
        step.node_handle
    ).get_spec_for_check_key(key)
    blocking = bool(spec.blocking)
    targets = latest_materializations(step.instance, key.asset_key, list(results))
    evaluations = {
        session: dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=check_name,
            passed=r.passed,
            metadata=r.metadata,
            target_materialization_data=targets.get(session),
            severity=severity,
            description=r.description,
            blocking=blocking,
            partition=session,
        )
        for session, r in results.items()
    }
    blocks = severity == dg.AssetCheckSeverity.ERROR and blocking
    failed = [s for s, e in evaluations.items() if not e.passed]
    representative = failed[0] if (blocks and failed) else next(reversed(evaluations))
    others = [e for s, e in evaluations.items() if s != representative]
    if failed:
        context.log.warning(
            f"{key.to_user_string()}: {len(failed)} of {len(evaluations)} sessions failed "
            f"({', '.join(failed[:10])}{', ...' if len(failed) > 10 else ''})"
        )

    yield dg.Output(None, output_name=output_name)
    yield from log_evaluations_as_batch(
        step,
        others,
        [
            f"Asset check '{check_name}' on '{key.asset_key.to_user_string()}' "
            f"{'passed' if e.passed else 'did not pass'} for session {e.partition}."
            for e in others
        ],
    )
    yield evaluations[representative]
