"""Runtime settings read from environment variables, with the embedded defaults.

==========================  ====================================  ======================================
variable                    default                               meaning
==========================  ====================================  ======================================
``ALPHADAG_DATA_ROOT``      ``.alphadag/data``                    Parquet partitions (path or fsspec URL)
``ALPHADAG_HISTORY_START``  ``2010-01-01``                        first session partition
``ALPHADAG_SOURCE``         ``sample``                            sample | synthetic | csv | yfinance
``ALPHADAG_LANDING_DIR``    ``.alphadag/landing``                 csv source's landing directory
``ALPHADAG_TICKERS``        (source default)                      comma list for synthetic / yfinance
``ALPHADAG_ALERT_LOG``      ``.alphadag/alerts.jsonl``            JSON-lines alert log
``ALPHADAG_MLFLOW_URI``     ``sqlite:///.alphadag/mlflow.db``     MLflow tracking (and registry) URI
``ALPHADAG_MLFLOW_ARTIFACTS`` ``.alphadag/mlartifacts``           artifact root of a new experiment
``ALPHADAG_CHAMPION_RERUNS`` ``5``                                latest sessions a new champion re-serves
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` ``2`` (MLflow's: 7)           MLflow client retries per request
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` ``1`` (MLflow's: 2)        retry n >= 2 waits factor * 2^(n-1) s
``MLFLOW_HTTP_REQUEST_TIMEOUT`` ``10`` (MLflow's: 120)            seconds per try (connect and read)
==========================  ====================================  ======================================

The ``MLFLOW_HTTP_REQUEST_*`` values are MLflow's own variables; alphadag sets each one the
environment leaves unset before its first MLflow call
(``alphadag.models.registry.bound_http_waits``), so an unreachable server fails in seconds.

Secrets never go here: they are read by resources through ``dg.EnvVar`` (the alert webhook,
``ALPHADAG_ALERT_WEBHOOK_URL``, is one).
"""

from __future__ import annotations

import datetime as dt
import os

DEFAULT_DATA_ROOT = ".alphadag/data"
DEFAULT_HISTORY_START = "2010-01-01"
DEFAULT_LANDING_DIR = ".alphadag/landing"
DEFAULT_ALERT_LOG = ".alphadag/alerts.jsonl"


def data_root() -> str:
    """Where partitions are stored."""
    return os.environ.get("ALPHADAG_DATA_ROOT", DEFAULT_DATA_ROOT)


def history_start() -> dt.date:
    """The first date of the session partitions."""
    raw = os.environ.get("ALPHADAG_HISTORY_START", DEFAULT_HISTORY_START)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as err:
        raise ValueError(f"ALPHADAG_HISTORY_START must be YYYY-MM-DD, got {raw!r}") from err


def source_name() -> str:
    """The configured market-data source."""
    return os.environ.get("ALPHADAG_SOURCE", "sample")


def landing_dir() -> str:
    """The csv source's landing directory."""
    return os.environ.get("ALPHADAG_LANDING_DIR", DEFAULT_LANDING_DIR)


def tickers() -> list[str]:
    """Configured tickers (empty = the source's default universe)."""
    raw = os.environ.get("ALPHADAG_TICKERS", "")
    return [t for t in (s.strip() for s in raw.split(",")) if t]


def champion_rerun_partitions() -> int:
    """How many of the latest predictions partitions a new champion re-serves."""
    raw = os.environ.get("ALPHADAG_CHAMPION_RERUNS", "5")
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 1:
        raise ValueError(f"ALPHADAG_CHAMPION_RERUNS must be a positive integer, got {raw!r}")
    return n


def mlflow_tracking_uri() -> str:
    """The MLflow tracking store (a server in production: ``http://mlflow:5000``)."""
    return os.environ.get("ALPHADAG_MLFLOW_URI", "sqlite:///.alphadag/mlflow.db")


def mlflow_artifacts() -> str:
    """Artifact root of a newly created experiment (``s3://bucket/mlflow`` in production)."""
    return os.environ.get("ALPHADAG_MLFLOW_ARTIFACTS", ".alphadag/mlartifacts")


def alert_log() -> str:
    """The JSON-lines alert log of the alert sink."""
    return os.environ.get("ALPHADAG_ALERT_LOG", DEFAULT_ALERT_LOG)


def daily_schedule_timing() -> tuple[str, str]:
    """``(cron, timezone)`` of ``daily_schedule``: ``ALPHADAG_DAILY_CRON`` (default
    ``30 18 * * 1-5``, after the US close) and ``ALPHADAG_TIMEZONE`` (default ``America/New_York``).
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    cron = os.environ.get("ALPHADAG_DAILY_CRON", "").strip() or "30 18 * * 1-5"
    tz = os.environ.get("ALPHADAG_TIMEZONE", "").strip() or "America/New_York"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"ALPHADAG_TIMEZONE must be an IANA time zone, got {tz!r}") from err
    return cron, tz
