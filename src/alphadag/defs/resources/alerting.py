"""The alert sink: where fallbacks, failed runs, stale assets and rewound cursors are reported.

Every alert is appended as one JSON line to ``jsonl_path`` (default ``.alphadag/alerts.jsonl``,
flushed and fsynced, so an alert survives a crash of the process that raised it). When
``webhook_url`` is set (a Slack incoming webhook or any endpoint taking a JSON POST; configure it
with ``dg.EnvVar("ALPHADAG_ALERT_WEBHOOK_URL")`` so the secret never sits in code or run config),
the alert is also posted there; a delivery failure never fails the run that raised the alert: it
is recorded in the log as a second line with ``"delivery": "failed"`` and the error.

Alert records: ``{"ts", "kind", "severity", "message", "source", ...details}``. Kinds used by the
project: ``model_fallback``, ``run_failure``, ``freshness``, ``sensor_cursor_rewound``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from alphadag.settings import DEFAULT_ALERT_LOG

SEVERITIES = ("info", "warning", "error")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


def read_alerts(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every alert record in a JSON-lines alert log (empty if the file does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class AlertSink(dg.ConfigurableResource):
    """A JSON-lines alert log, plus an optional webhook (Slack-compatible JSON with a text key)."""

    jsonl_path: str = Field(DEFAULT_ALERT_LOG, description="append-only JSON-lines alert log")
    webhook_url: str | None = Field(
        None, description="POST each alert here (use dg.EnvVar; Slack incoming webhooks work)"
    )
    timeout_seconds: float = Field(5.0, description="webhook timeout")

    def send(
        self,
        kind: str,
        message: str,
        *,
        severity: str = "warning",
        source: str = "",
        **details: Any,
    ) -> dict[str, Any]:
        """Record one alert (and post it to the webhook if configured); returns the record."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        record = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "severity": severity,
            "message": message,
            "source": source,
            **{k: _jsonable(v) for k, v in details.items()},
        }
        self._append(record)
        if self.webhook_url:
            try:
                self._post(record)
            except Exception as err:  # an alert must never fail its run
                self._append({**record, "delivery": "failed", "delivery_error": repr(err)})
        return record

    def _append(self, record: dict[str, Any]) -> None:
        path = Path(self.jsonl_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _post(self, record: dict[str, Any]) -> None:
        text = f"[alphadag {record['severity']}] {record['kind']}: {record['message']}"
        body = json.dumps({"text": text, "alert": record}).encode()
        req = urllib.request.Request(
            self.webhook_url or "",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=self.timeout_seconds) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")
