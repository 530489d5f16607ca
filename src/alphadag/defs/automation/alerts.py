"""Alerting sensors: failed runs and stale assets become records in the ``alerts`` sink.

- ``run_failure_alert_sensor`` (a ``run_failure_sensor`` over every job of the code location) sends
  one ``run_failure`` alert per failed run: job, run id, partition or range tags, the first step
  error (its innermost cause, i.e. the user's exception; or the run's own failure message when no
  step failed, e.g. a killed run worker) and whether run retries will re-execute it
  (``dagster/will_retry``).
- ``freshness_alert_sensor`` reads the freshness state that the instance's freshness daemon records
  for every asset carrying a ``FreshnessPolicy`` (``FRESHNESS_STATE_CHANGE`` events, read back
  through ``DagsterInstance.get_freshness_state_records``) and sends a ``freshness`` alert when an
  asset turns ``FAIL`` or ``WARN`` at a deadline that is an XNYS session, a reminder at each later
  session deadline it is still failing, and an ``info`` alert when it is fresh again. A failure at a
  holiday deadline is expected (the cron knows weekdays only) and is logged, not alerted.

The sensor cursor of the freshness sensor is JSON ``{asset: {"state", "ts", "alerted"}}``: the
last state handled, the state change's timestamp and the deadline last alerted.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from alphadag.defs.automation.freshness import deadline_session
from alphadag.defs.resources.alerting import AlertSink

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
_BAD_STATES = {"FAIL": "error", "WARN": "warning"}


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _root_message(error) -> str:
    """The first line of the innermost cause: the user's exception, not Dagster's wrapper."""
    while error.cause is not None:
        error = error.cause
    return _first_line(error.message)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One run_failure alert (JSON-lines sink, webhook if configured) per failed run of "
    "any job of this code location.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertSink) -> None:
    """Send a ``run_failure`` alert naming the job, run, partition(s) and error of a failed run."""
    run = context.dagster_run
    tags = run.tags
    step_errors = [
        f"{event.step_key}: {_root_message(event.step_failure_data.error)}"
        for event in context.get_step_failure_events()
        if event.step_failure_data.error is not None
    ]
    error = step_errors[0] if step_errors else _first_line(context.failure_event.message or "")
    will_retry = tags.get("dagster/will_retry") == "true"
    partition_range = (
        [tags[RANGE_START_TAG], tags[RANGE_END_TAG]]
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags
        else None
    )
    alerts.send(
        "run_failure",
        f"{run.job_name} run {run.run_id} failed: {error}",
        severity="warning" if will_retry else "error",
        source="run_failure_alert_sensor",
        job_name=run.job_name,
        run_id=run.run_id,
        partition=tags.get("dagster/partition"),
        partition_range=partition_range,
        error=error,
        step_errors=step_errors,
        will_retry=will_retry,
        retry_number=int(tags.get("dagster/retry_number", "0")),
        trigger=tags.get("alphadag/trigger"),
    )


@dg.sensor(
    name="freshness_alert_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Freshness policy failures (recorded by the freshness daemon) as freshness alerts.",
)
def freshness_alert_sensor(context: dg.SensorEvaluationContext, alerts: AlertSink):
    """Alert on assets failing their ``FreshnessPolicy`` at an XNYS session deadline."""
    repo = context.repository_def
    if repo is None:
        return dg.SkipReason("no repository to read freshness policies from")
    keys = [n.key for n in repo.asset_graph.asset_nodes if n.freshness_policy is not None]
    records = context.instance.get_freshness_state_records(keys)
    handled: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    now_day, now_is_session = deadline_session(dt.datetime.now(dt.UTC))
    sent = 0
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        record = records.get(key)
        if record is None:
            continue
        name = key.to_user_string()
        state = record.freshness_state.value
        ts = record.updated_at.timestamp()
        before = handled.get(name, {})
        alerted = before.get("alerted")
        if ts > before.get("ts", 0.0):
            day, is_open = deadline_session(record.updated_at)
            if state in _BAD_STATES and is_open:
                alerts.send(
                    "freshness",
                    f"{name} is {state} at the {day.isoformat()} deadline: not materialized "
                    "in the window its freshness policy expects",
                    severity=_BAD_STATES[state],
                    source="freshness_alert_sensor",
                    asset=name,
                    state=state,
                    previous_state=before.get("state"),
                    deadline=day,
                    since=record.updated_at,
                )
                alerted, sent = day.isoformat(), sent + 1
            elif state in _BAD_STATES:
                context.log.info(f"{name} {state} at {day}: the exchange was shut, not alerted")
            elif state == "PASS" and before.get("state") in _BAD_STATES and alerted:
                alerts.send(
                    "freshness",
                    f"{name} is fresh again",
                    severity="info",
                    source="freshness_alert_sensor",
                    asset=name,
                    state=state,
                    previous_state=before.get("state"),
                    since=record.updated_at,
                )
                alerted, sent = None, sent + 1
        elif state == "FAIL" and now_is_session and alerted != now_day.isoformat():
            alerts.send(
                "freshness",
                f"{name} is still FAIL at the {now_day.isoformat()} deadline",
                severity="error",
                source="freshness_alert_sensor",
                asset=name,
                state=state,
                previous_state=state,
                deadline=now_day,
                since=record.updated_at,
            )
            alerted, sent = now_day.isoformat(), sent + 1
        handled[name] = {"state": state, "ts": ts, "alerted": alerted}
    context.update_cursor(json.dumps(handled, sort_keys=True))
    return dg.SkipReason(f"{sent} freshness alert(s) sent for {len(records)} asset(s) evaluated")
