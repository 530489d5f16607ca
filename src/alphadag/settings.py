"""Runtime settings: one typed :class:`Settings` object built from environment variables.

Each variable is declared once, as a field of :class:`Settings` (its name, type, default and
meaning); :meth:`Settings.from_env` reads and validates them all, and :meth:`Settings.table`
renders the table below (the README's Configuration table is the same text, checked by
``tests/unit/test_settings.py``). Nothing reads the environment when a module is imported:

- Functions that run at run time (the CLI, sensor bodies, the MLflow UI links) call
  :meth:`Settings.from_env`.
- The code location reads them when its definitions load: ``alphadag.definitions.defs`` calls
  :func:`load`, which reads and validates the environment (an error names every bad variable)
  and installs the result before the ``defs`` folder is imported. The objects Dagster's
  decorators need as module-level values (``sessions_partitions`` and ``FROM_FIRST_SESSION`` from
  ``ALPHADAG_HISTORY_START``; ``DAILY_FRESHNESS``, ``daily_schedule`` and
  ``landing_zone_sensor``'s default status from ``ALPHADAG_DAILY_CRON``, ``ALPHADAG_TIMEZONE``
  and ``ALPHADAG_SOURCE``) take :func:`loaded`, the installed object, which never reads the
  environment and raises when nothing was loaded. Every ``defs()`` call reads the environment
  again; when one of those values changed (:meth:`Settings.definition_values`), it imports the
  modules built from them afresh, so a changed variable takes effect at the next definitions
  load (the UI's code-location reload) in any process.

Secrets never go here: they are read by resources through ``dg.EnvVar`` (the alert webhook,
``ALPHADAG_ALERT_WEBHOOK_URL``, is one). The ``MLFLOW_HTTP_REQUEST_*`` rows are MLflow's own
variables: alphadag sets each one the environment leaves unset before its first MLflow call
(``alphadag.models.registry.bound_http_waits``), so an unreachable server fails in seconds.

>>> s = Settings.from_env({"ALPHADAG_HISTORY_START": "2024-01-02", "ALPHADAG_TICKERS": "AAPL, MSFT"})
>>> s.history_start, s.tickers, s.source
(datetime.date(2024, 1, 2), ('AAPL', 'MSFT'), 'sample')
>>> Settings.from_env({"ALPHADAG_HISTORY_START": "2024/01/02"})
Traceback (most recent call last):
...
ValueError: invalid settings: ALPHADAG_HISTORY_START must be YYYY-MM-DD, got '2024/01/02'

"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

EXCHANGE_TIMEZONE = "America/New_York"
"""The XNYS exchange's time zone: the default of ``ALPHADAG_TIMEZONE`` and the weekly schedule's."""

DEFAULT_HORIZON = 5
"""The label horizon in sessions the return model is trained, served and rebalanced on."""

DEFAULT_DATA_ROOT = ".alphadag/data"
DEFAULT_HISTORY_START = dt.date(2010, 1, 1)
DEFAULT_LANDING_DIR = ".alphadag/landing"
DEFAULT_ALERT_LOG = ".alphadag/alerts.jsonl"
DEFAULT_MLFLOW_URI = "sqlite:///.alphadag/mlflow.db"
DEFAULT_MLFLOW_ARTIFACTS = ".alphadag/mlartifacts"
DEFAULT_MLFLOW_UI_BASE = "http://127.0.0.1:5000"
DEFAULT_DAILY_CRON = "30 18 * * 1-5"
DEFAULT_CHAMPION_RERUNS = 5
SOURCES = ("sample", "synthetic", "csv", "yfinance")

MLFLOW_HTTP_WAIT_DEFAULTS: Mapping[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
"""MLflow's HTTP retries, backoff factor and per-try timeout (s) unless the environment sets them."""

_DOW_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}


class DailyCron(NamedTuple):
    """A once-a-day cron: the local time of day and the Python weekdays (Monday = 0) it fires."""

    time: dt.time
    weekdays: frozenset[int]


def parse_daily_cron(cron: str) -> DailyCron:
    """Parse ``"M H * * DOW"`` (a fixed minute and hour; DOW ``*``, numbers, ranges, names).

    >>> parse_daily_cron("30 18 * * 1-5")
    DailyCron(time=datetime.time(18, 30), weekdays=frozenset({0, 1, 2, 3, 4}))
    """
    fields = cron.split()
    usage = f"ALPHADAG_DAILY_CRON must be 'M H * * DOW' (e.g. {DEFAULT_DAILY_CRON!r}), got {cron!r}"
    if len(fields) != 5 or fields[2] != "*" or fields[3] != "*":
        raise ValueError(usage)
    minute, hour, _, _, dow = fields
    if not (minute.isdigit() and hour.isdigit() and int(minute) < 60 and int(hour) < 24):
        raise ValueError(f"{usage}: the minute and hour must be single numbers (0-59, 0-23)")
    days: set[int] = set()
    for part in dow.split(","):
        if part == "*":
            days.update(range(7))
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = (
                _DOW_NAMES[p.upper()] if p.upper() in _DOW_NAMES else int(p) for p in (lo, hi or lo)
            )
        except ValueError:
            raise ValueError(f"{usage}: cannot read the weekday field {dow!r}") from None
        if not 0 <= a <= b <= 7:
            raise ValueError(f"{usage}: weekdays are 0-7 (Sunday 0 or 7), ranges low-high")
        days.update(range(a, b + 1))
    # cron counts Sunday = 0 (or 7), Python's weekday() Monday = 0
    return DailyCron(dt.time(int(hour), int(minute)), frozenset((d - 1) % 7 for d in days))


def _text(name: str, raw: str) -> str:
    return raw


def _date(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{name} must be YYYY-MM-DD, got {raw!r}") from None


def _source(name: str, raw: str) -> str:
    if raw not in SOURCES:
        raise ValueError(f"{name} must be one of {', '.join(SOURCES)}, got {raw!r}")
    return raw


def _tickers(name: str, raw: str) -> tuple[str, ...]:
    return tuple(t for t in (s.strip() for s in raw.split(",")) if t)


def _cron(name: str, raw: str) -> str:
    parse_daily_cron(raw)
    return raw


def _timezone(name: str, raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name} must be an IANA time zone such as Europe/London, got {raw!r}"
        ) from None
    return raw


def _positive_int(name: str, raw: str) -> int:
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return n


def _var(
    name: str,
    default: Any,
    meaning: str,
    parse: Callable[[str, str], Any] = _text,
    shown: str | None = None,
) -> Any:
    """A :class:`Settings` field read from the variable ``name`` (``shown``: the table's default)."""
    metadata = {"env": name, "meaning": meaning, "parse": parse, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting alphadag reads from the environment, typed and validated.

    A variable that is unset or blank takes the default. Build it with :meth:`from_env`;
    ``Settings()`` is the defaults.
    """

    data_root: str = _var(
        "ALPHADAG_DATA_ROOT", DEFAULT_DATA_ROOT, "partition storage root (path or fsspec URL)"
    )
    history_start: dt.date = _var(  # noqa: RUF009 (_var returns a dataclasses.field)
        "ALPHADAG_HISTORY_START",
        DEFAULT_HISTORY_START,
        "first session partition (YYYY-MM-DD)",
        _date,
    )
    source: str = _var(
        "ALPHADAG_SOURCE",
        "sample",
        "market data: `sample`, `synthetic`, `csv` or `yfinance`",
        _source,
    )
    landing_dir: str = _var(
        "ALPHADAG_LANDING_DIR", DEFAULT_LANDING_DIR, "the csv source's landing directory (or URL)"
    )
    tickers: tuple[str, ...] = _var(
        "ALPHADAG_TICKERS",
        (),
        "comma list for `synthetic` / `yfinance`",
        _tickers,
        "source default",
    )
    daily_cron: str = _var(
        "ALPHADAG_DAILY_CRON",
        DEFAULT_DAILY_CRON,
        "`daily_schedule` tick, `M H * * DOW` (the freshness deadline follows it)",
        _cron,
    )
    timezone: str = _var(
        "ALPHADAG_TIMEZONE",
        EXCHANGE_TIMEZONE,
        "time zone of `ALPHADAG_DAILY_CRON` and the freshness deadline",
        _timezone,
    )
    alert_log: str = _var(
        "ALPHADAG_ALERT_LOG", DEFAULT_ALERT_LOG, "the alert sink's JSON-lines log"
    )
    mlflow_uri: str = _var(
        "ALPHADAG_MLFLOW_URI",
        DEFAULT_MLFLOW_URI,
        "MLflow tracking and registry store (a server URL in production)",
    )
    mlflow_artifacts: str = _var(
        "ALPHADAG_MLFLOW_ARTIFACTS",
        DEFAULT_MLFLOW_ARTIFACTS,
        "artifact root of a newly created experiment (`s3://...` in production)",
    )
    mlflow_ui_base: str = _var(
        "MLFLOW_UI_BASE",
        DEFAULT_MLFLOW_UI_BASE,
        "MLflow UI base of the run and model links in asset metadata",
    )
    champion_reruns: int = _var(
        "ALPHADAG_CHAMPION_RERUNS",
        DEFAULT_CHAMPION_RERUNS,
        "latest `predictions` sessions re-served when the champion moves",
        _positive_int,
    )
    git_commit: str | None = _var(
        "ALPHADAG_GIT_COMMIT",
        None,
        "commit recorded on registered models (set it where the code is not a git checkout)",
        shown="`git rev-parse HEAD`",
    )

    def definition_values(self) -> tuple:
        """What the module-level Dagster objects of the ``defs`` folder are built from: the
        partitions' first date, the schedule's cron and time zone (and the freshness deadline
        derived from them) and whether the landing sensor starts running (the csv source).
        When these differ, ``alphadag.definitions.defs`` imports the folder afresh; the other
        settings are read where they are used (resources, run time) and rebuild nothing."""
        return (self.history_start, self.daily_cron, self.timezone, self.source == "csv")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable from ``environ`` (default: ``os.environ``).

        Raises ``ValueError`` naming each bad variable, its value and the expected form.

        >>> Settings.from_env({"ALPHADAG_CHAMPION_RERUNS": "3"}).champion_reruns
        3
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[str] = []
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"], "").strip()
            if not raw:
                continue
            try:
                values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
            except ValueError as err:
                errors.append(str(err))
        if errors:
            raise ValueError("invalid settings: " + "; ".join(errors))
        return cls(**values)

    @property
    def daily_run(self) -> DailyCron:
        """The daily schedule's local time and weekdays (from ``daily_cron``)."""
        return parse_daily_cron(self.daily_cron)

    @classmethod
    def table(cls) -> str:
        """The Configuration table (Markdown): every variable, its default and meaning."""
        rows = [("DAGSTER_HOME", "`.dagster_home` (Makefile)", "Dagster instance directory")]
        for f in dataclasses.fields(cls):
            shown = f.metadata["shown"]
            if shown is None:
                shown = f"`{','.join(f.default) if isinstance(f.default, tuple) else f.default}`"
            rows.append((f.metadata["env"], shown, f.metadata["meaning"]))
        rows.append(
            (
                "ALPHADAG_ALERT_WEBHOOK_URL",
                "unset",
                "secret: Slack-compatible webhook for alerts (read through `dg.EnvVar`)",
            )
        )
        mlflow_meaning = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": ("7", "MLflow client retries per request"),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": ("2", "retry n >= 2 waits factor * 2^(n-1) s"),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": ("120", "seconds per try (connect and read)"),
        }
        for name, value in MLFLOW_HTTP_WAIT_DEFAULTS.items():
            theirs, meaning = mlflow_meaning[name]
            rows.append((name, f"`{value}` (MLflow's: {theirs})", meaning))
        lines = ["| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | {default} | {meaning} |" for name, default, meaning in rows]
        return "\n".join(lines)


class SettingsNotLoaded(RuntimeError):
    """A ``defs`` module was imported before the code location loaded its settings."""


_loaded: Settings | None = None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment (or ``environ``) and install it as the settings the
    ``defs`` folder is built from; returns it. Called by ``alphadag.definitions.defs`` each time
    the definitions load, and by code that imports ``defs`` modules directly (tests, notebooks).
    """
    global _loaded
    _loaded = Settings.from_env(environ)
    return _loaded


def loaded() -> Settings:
    """The settings installed by the last :func:`load`: what the module-level Dagster objects of
    the ``defs`` folder (partitions, freshness deadline, schedule, a sensor's default status) are
    built from. Never reads the environment.

    Raises SettingsNotLoaded when nothing was loaded, naming the two ways to load.
    """
    if _loaded is None:
        raise SettingsNotLoaded(
            "alphadag settings are not loaded: the alphadag.defs modules are built from the "
            "settings the code location reads when its definitions load; call "
            "alphadag.definitions.defs() (or alphadag.settings.load() to import a defs module "
            "on its own) first"
        )
    return _loaded


def data_root() -> str:
    """Where partitions are stored (read now: for the CLI and run-time code)."""
    return Settings.from_env().data_root


__doc__ = f"{__doc__}\n{Settings.table()}\n"
