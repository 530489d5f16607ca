"""A deterministic synthetic OHLCV source with optional fault injection.

:class:`SyntheticSource` generates geometric-Brownian-motion bars for any number of tickers over the
XNYS sessions of its coverage. Each ticker's random stream is seeded from ``(seed, ticker)`` alone
and its whole path is generated once over the coverage, so a ticker's bar on a session never
depends on which other tickers are configured or which window is fetched: ``fetch(a, b)``
restricted to a sub-range equals ``fetch`` of that sub-range, and extending ``end`` leaves earlier
bars unchanged.
:class:`Fault` and :func:`random_faults` inject the defects the ``bars`` validation must catch (NaN
or negative closes, high below low, duplicated rows, off-calendar dates, 10x spikes) so the
quarantine can be tested end to end against known, reproducible damage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import polars as pl

from alphadag.market.calendar import as_date, is_session, sessions
from alphadag.market.schema import RAW_BARS_SCHEMA, conform_raw
from alphadag.market.sources.base import Coverage
from alphadag.market.tickers import canonical_ticker, canonical_tickers

FaultKind = Literal[
    "nan", "negative_price", "high_lt_low", "duplicate_row", "off_calendar_date", "spike_10x"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
"""Every fault kind: value faults (applied to a row in place) and those that add extra rows."""

_VALUE_KINDS = ("spike_10x", "high_lt_low", "negative_price", "nan")
_EXTRA_KINDS = ("duplicate_row", "off_calendar_date")

_SESSIONS_PER_YEAR = 252.0
_DRIFT_RANGE = (-0.05, 0.15)  # annualised drift drawn per ticker when not given
_VOL_RANGE = (0.15, 0.45)  # annualised volatility drawn per ticker when not given
_LOG10_VOLUME_RANGE = (5.5, 7.0)  # typical daily volume, 10**U(...) shares
_GAP_SCALE = 0.2  # overnight gap as a fraction of the daily volatility
_WICK_SCALE = 0.5  # wick size as a fraction of the daily volatility
_SIGNAL_LAGS = 5  # the signal option: shocks of the last five sessions persist
_WICK_FLOOR = 1e-4  # minimum relative wick, so high > max(open, close) and low < min(open, close)


@dataclass(frozen=True)
class Fault:
    """One injected defect: ``kind`` applied to ``ticker``'s bar on session ``date``.

    Kinds (see :data:`FAULT_KINDS`): ``"nan"`` sets close to NaN; ``"negative_price"`` makes close
    negative; ``"high_lt_low"`` swaps high and low; ``"duplicate_row"`` emits the row twice;
    ``"off_calendar_date"`` adds a copy of the row dated the nearest non-session day before
    ``date``; ``"spike_10x"`` multiplies close by 10 and raises high to match, so OHLC stays
    consistent and only a move rule can catch it.

    Parameters
    ----------
    kind:
        One of :data:`FAULT_KINDS`.
    ticker:
        The ticker hit; canonicalised (``"brk.b"`` becomes ``"BRK-B"``).
    date:
        The session whose bar is damaged (a ``datetime.date`` or ISO string).

    >>> Fault("nan", "aapl", "2024-01-02")
    Fault(kind='nan', ticker='AAPL', date=datetime.date(2024, 1, 2))
    """

    kind: FaultKind
    ticker: str
    date: dt.date

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is unknown; use one of {FAULT_KINDS}")
        object.__setattr__(self, "ticker", canonical_ticker(self.ticker))
        object.__setattr__(self, "date", as_date(self.date, "fault date"))

    def extra_row_date(self) -> dt.date:
        """The date of the extra row this fault emits (the session itself for value faults).

        For ``"off_calendar_date"`` it is the nearest day before :attr:`date` that is no session.

        >>> Fault("off_calendar_date", "AAPL", dt.date(2024, 1, 8)).extra_row_date()  # a Monday
        datetime.date(2024, 1, 7)
        """
        if self.kind != "off_calendar_date":
            return self.date
        day = self.date - dt.timedelta(days=1)
        while is_session(day):
            day -= dt.timedelta(days=1)
        return day


def random_faults(
    n: int,
    seed: int,
    tickers: Sequence[str],
    sessions: Sequence[dt.date],
    kinds: Sequence[str] = FAULT_KINDS,
) -> tuple[Fault, ...]:
    """Draw ``n`` distinct faults reproducibly from ``seed`` (for property tests).

    Parameters
    ----------
    n:
        How many faults; at most ``len(kinds) * len(tickers) * len(sessions)``.
    seed:
        Non-negative integer; the same arguments always give the same faults.
    tickers:
        Tickers to damage (canonicalised).
    sessions:
        Sessions to damage; pass sessions of the source's coverage so the source accepts them.
    kinds:
        Fault kinds to draw from, uniformly; defaults to all of :data:`FAULT_KINDS`.

    >>> days = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    >>> faults = random_faults(3, seed=1, tickers=["AAA", "BBB"], sessions=days)
    >>> len(faults), faults == random_faults(3, seed=1, tickers=["AAA", "BBB"], sessions=days)
    (3, True)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    _check_seed(seed)
    if isinstance(tickers, str):
        raise TypeError("tickers must be a list of tickers, not a single string")
    names = canonical_tickers(list(tickers))
    days = sorted({as_date(day, "session") for day in sessions})
    kind_list = list(dict.fromkeys(kinds))
    for kind in kind_list:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is unknown; use one of {FAULT_KINDS}")
    space = len(kind_list) * len(names) * len(days)
    if n > space:
        raise ValueError(
            f"cannot draw {n} distinct faults from {len(kind_list)} kind(s) x {len(names)} "
            f"ticker(s) x {len(days)} session(s) = {space} combinations"
        )
    if n == 0:
        return ()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xFA017,)))
    picks = rng.choice(space, size=n, replace=False)
    faults = []
    for flat in picks.tolist():
        rest, day_i = divmod(flat, len(days))
        kind_i, ticker_i = divmod(rest, len(names))
        faults.append(Fault(kind_list[kind_i], names[ticker_i], days[day_i]))  # type: ignore[arg-type]
    return tuple(faults)


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _per_ticker(
    value: float | Mapping[str, float] | None, tickers: tuple[str, ...], what: str
) -> float | dict[str, float] | None:
    """Validate a drift/vol parameter: ``None``, one number for all tickers, or a per-ticker map."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for raw, number in value.items():
            ticker = canonical_ticker(raw)
            if ticker not in tickers:
                raise ValueError(
                    f"{what} is given for ticker {raw!r}, which is not among the source's tickers"
                )
            out[ticker] = _finite(number, f"{what}[{raw!r}]")
        return out
    return _finite(value, what)


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def _stream(seed: int, ticker: str, stream: int) -> np.random.Generator:
    """The generator for ``(seed, ticker)``; streams 0 (parameters) and 1 (path) are disjoint."""
    ticker_key = int.from_bytes(hashlib.sha256(ticker.encode("utf-8")).digest(), "big")
    return np.random.default_rng(np.random.SeedSequence([seed, ticker_key], spawn_key=(stream,)))


@dataclass(frozen=True, kw_only=True)
class SyntheticSource:
    """Deterministic GBM bars for ``tickers`` over the XNYS sessions from ``start`` to ``end``.

    Per session and ticker the close follows GBM with the ticker's annualised ``drift`` and ``vol``
    (252 sessions a year), the open is the previous close times a small random gap, high and low add
    strictly positive random wicks around open and close, and volume is a positive whole number.
    Output rows are sorted by ``(date, ticker)``; the extra rows of ``"duplicate_row"`` and
    ``"off_calendar_date"`` faults follow, ordered by ``(fault date, ticker, kind)``. Every row
    satisfies ``start <= date <= end`` of the fetch: an injected row appears exactly when its own
    date is in the window (for an off-calendar row, the non-session day it is dated).

    Parameters
    ----------
    tickers:
        Tickers to generate, canonicalised and de-duplicated (rows are still sorted by ticker
        within a date). Give this or ``n_tickers``.
    n_tickers:
        When ``tickers`` is ``None``, generate ``SYN000``, ``SYN001``, ... (more digits past 1,000
        tickers); ignored when ``tickers`` is given. After construction it is ``len(tickers)``.
    start, end:
        The coverage, inclusive (``datetime.date`` or ISO strings); it must contain a session.
        Paths start at ``start``, so changing ``start`` changes every bar; changing ``end`` does
        not change the bars both coverages share.
    seed:
        Non-negative integer; each ticker's stream is seeded from ``(seed, ticker)``.
    drift, vol:
        Annualised drift and volatility: one number for all tickers, a ``{ticker: number}`` mapping
        (tickers missing from it draw theirs), or ``None`` to draw per ticker from the seed
        (drift uniform in [-5%, 15%], vol uniform in [15%, 45%]).
    start_price:
        The close before the first session of every path (> 0).
    signal:
        A learnable, stationary short-horizon momentum (0, the default: pure random walks).
        Each session's log return adds ``signal * daily_vol * (e[t-1] + ... + e[t-5])``, the sum
        of the ticker's previous five standard-normal return shocks (an MA(5) process), so the
        forward return of the next sessions is partly predictable, per ticker and across
        tickers, from the trailing returns known at ``t``'s close. Use it to test that a model
        that learns something is promoted; with ``signal=0`` and equal ``drift`` nothing is
        learnable.
    faults:
        :class:`Fault` values to inject; stored de-duplicated and sorted. Each must name a
        configured ticker and a session inside the coverage.

    >>> src = SyntheticSource(tickers=["aaa", "bbb"], start="2024-01-02", end="2024-01-05", seed=7)
    >>> bars = src.fetch(dt.date(2024, 1, 3), dt.date(2024, 1, 4))
    >>> bars.height, bars["ticker"].to_list(), bars["origin"][0]
    (4, ['AAA', 'BBB', 'AAA', 'BBB'], 'synthetic:seed=7')
    >>> bars.equals(src.fetch(dt.date(2024, 1, 2), dt.date(2024, 1, 5)).slice(2, 4))
    True
    """

    name: str = field(default="synthetic", init=False)
    tickers: Sequence[str] | None = None
    n_tickers: int | None = None
    start: dt.date
    end: dt.date
    seed: int = 0
    drift: float | Mapping[str, float] | None = None
    vol: float | Mapping[str, float] | None = None
    start_price: float = 100.0
    faults: tuple[Fault, ...] = ()
    signal: float = 0.0
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "tickers", self._resolve_tickers())
        setattr_(self, "n_tickers", len(self.tickers))
        start = as_date(self.start, "start")
        end = as_date(self.end, "end")
        if start > end:
            raise ValueError(f"start {start} is after end {end}; the coverage must be non-empty")
        setattr_(self, "start", start)
        setattr_(self, "end", end)
        _check_seed(self.seed)
        setattr_(self, "drift", _per_ticker(self.drift, self.tickers, "drift"))
        setattr_(self, "vol", _per_ticker(self.vol, self.tickers, "vol"))
        for ticker, sigma in _values(self.vol, self.tickers):
            if sigma < 0:
                raise ValueError(f"vol for {ticker} must be >= 0, got {sigma}")
        price = _finite(self.start_price, "start_price")
        if price <= 0:
            raise ValueError(f"start_price must be > 0, got {self.start_price!r}")
        setattr_(self, "start_price", price)
        signal = _finite(self.signal, "signal")
        if not 0.0 <= signal < 0.5:
            raise ValueError(f"signal must be in [0, 0.5), got {self.signal!r}")
        setattr_(self, "signal", signal)
        days = sessions(start, end)
        if not days:
            raise ValueError(f"the coverage {start}..{end} contains no XNYS session")
        self._cache["sessions"] = days
        setattr_(self, "faults", self._resolve_faults(days))

    def _resolve_tickers(self) -> tuple[str, ...]:
        if self.tickers is None and self.n_tickers is None:
            raise ValueError("give either tickers=[...] or n_tickers=<int>")
        if self.tickers is None:
            n = self.n_tickers
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"n_tickers must be a positive integer, got {n!r}")
            width = max(3, len(str(n - 1)))
            return tuple(f"SYN{i:0{width}d}" for i in range(n))
        if isinstance(self.tickers, str):
            raise TypeError(f"tickers must be a list of tickers, not a string ({self.tickers!r})")
        names = tuple(canonical_tickers(list(self.tickers)))
        if not names:
            raise ValueError("tickers is empty; give at least one ticker or tickers=None")
        return names  # n_tickers is only the fallback for tickers=None

    def _resolve_faults(self, days: list[dt.date]) -> tuple[Fault, ...]:
        if isinstance(self.faults, Fault):
            raise TypeError("faults must be a tuple of Fault values, not a single Fault")
        session_set = set(days)
        known = set(self.tickers)
        out: set[Fault] = set()
        for fault in self.faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"faults must hold Fault values, got {type(fault).__name__}")
            if fault.ticker not in known:
                raise ValueError(f"{fault} names ticker {fault.ticker!r}, not a source ticker")
            if fault.date not in session_set:
                raise ValueError(
                    f"{fault} is dated {fault.date}, which is not a session inside the coverage "
                    f"{self.start}..{self.end}"
                )
            out.add(fault)
        order = {kind: i for i, kind in enumerate(FAULT_KINDS)}
        return tuple(sorted(out, key=lambda f: (f.date, f.ticker, order[f.kind])))

    def __getstate__(self) -> dict[str, Any]:
        # ship the configuration, not the cached panel, when a run hands the source to a worker
        state = dict(self.__dict__)
        state["_cache"] = {"sessions": self._cache["sessions"]}
        return state

    @property
    def origin(self) -> str:
        """The ``origin`` stamped on every row: ``"synthetic:seed=<seed>"``."""
        return f"synthetic:seed={self.seed}"

    def coverage(self) -> Coverage:
        """The configured ``start``..``end``.

        >>> SyntheticSource(n_tickers=1, start="2024-01-02", end="2024-01-31").coverage().end
        datetime.date(2024, 1, 31)
        """
        return Coverage(self.start, self.end)

    def sessions(self) -> list[dt.date]:
        """The XNYS sessions of the coverage (the dates every ticker has a bar for).

        >>> len(SyntheticSource(n_tickers=1, start="2024-01-01", end="2024-01-07").sessions())
        4
        """
        return list(self._cache["sessions"])

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars with ``start <= date <= end`` in ``RAW_BARS_SCHEMA``, faults included.

        Parameters
        ----------
        start, end:
            The window, inclusive; parts outside the coverage are simply empty.

        >>> src = SyntheticSource(n_tickers=2, start="2024-01-02", end="2024-01-31",
        ...                       faults=(Fault("duplicate_row", "SYN001", dt.date(2024, 1, 3)),))
        >>> src.fetch(dt.date(2024, 1, 3), dt.date(2024, 1, 3))["ticker"].to_list()
        ['SYN000', 'SYN001', 'SYN001']
        """
        start = as_date(start, "start")
        end = as_date(end, "end")
        if start > end:
            raise ValueError(f"fetch start {start} is after end {end}")
        panel = self._panel()
        dates = self._cache["session_array"]
        lo = int(np.searchsorted(dates, np.datetime64(start, "D"), side="left"))
        hi = int(np.searchsorted(dates, np.datetime64(end, "D"), side="right"))
        k = len(self.tickers)
        window = panel.slice(lo * k, max(hi - lo, 0) * k)
        value_faults = [f for f in self.faults if f.kind in _VALUE_KINDS and start <= f.date <= end]
        window = _apply_value_faults(window, value_faults)
        extras = [
            f for f in self.faults if f.kind in _EXTRA_KINDS and start <= f.extra_row_date() <= end
        ]
        if extras:
            window = pl.concat([window, self._extra_rows(panel, extras)], how="vertical")
        return conform_raw(window)

    def _extra_rows(self, panel: pl.DataFrame, extras: list[Fault]) -> pl.DataFrame:
        """The rows added by ``duplicate_row``/``off_calendar_date`` faults, in fault order."""
        keys = pl.DataFrame(
            {
                "ticker": [f.ticker for f in extras],
                "date": [f.date for f in extras],
                "_out_date": [f.extra_row_date() for f in extras],
                "_order": list(range(len(extras))),
            },
            schema_overrides={"date": pl.Date, "_out_date": pl.Date},
        )
        source_dates = {f.date for f in extras}
        rows = (
            panel.filter(pl.col("date").is_in(sorted(source_dates)))
            .join(keys, on=["ticker", "date"], how="inner")
            .sort("_order")
        )
        # the copied row carries the value faults of its session, exactly as the vendor row would
        value_faults = [f for f in self.faults if f.kind in _VALUE_KINDS and f.date in source_dates]
        rows = _apply_value_faults(rows, value_faults)
        return rows.with_columns(pl.col("_out_date").alias("date")).select(panel.columns)

    def _panel(self) -> pl.DataFrame:
        """The clean bars of every ticker over the whole coverage, built once per instance."""
        cached = self._cache.get("panel")
        if cached is not None:
            return cached
        days: list[dt.date] = self._cache["sessions"]
        n, k = len(days), len(self.tickers)
        shape = (k, n)
        opens, highs, lows = np.empty(shape), np.empty(shape), np.empty(shape)
        closes, volumes = np.empty(shape), np.empty(shape)
        sqrt_dt = math.sqrt(1.0 / _SESSIONS_PER_YEAR)
        for i, ticker in enumerate(self.tickers):
            mu, sigma, base_volume = self._parameters(ticker)
            # one (n, 5) draw: row t only depends on t, so extending `end` keeps earlier bars
            draws = _stream(self.seed, ticker, 1).standard_normal((n, 5))
            daily_sigma = sigma * sqrt_dt
            shocks = draws[:, 0]
            if self.signal:
                # MA(5): the previous five shocks persist (row t reads rows before t only)
                padded = np.concatenate((np.zeros(_SIGNAL_LAGS), shocks))
                trailing = np.convolve(padded, np.ones(_SIGNAL_LAGS), mode="valid")[:-1]
                shocks = shocks + self.signal * trailing
            log_ret = (mu - 0.5 * sigma * sigma) / _SESSIONS_PER_YEAR + daily_sigma * shocks
            close = self.start_price * np.exp(np.cumsum(log_ret))
            prev_close = np.concatenate(([self.start_price], close[:-1]))
            open_ = prev_close * np.exp(_GAP_SCALE * daily_sigma * draws[:, 1])
            wick = _WICK_SCALE * max(daily_sigma, 0.01)
            high = np.maximum(open_, close) * np.exp(wick * np.abs(draws[:, 2]) + _WICK_FLOOR)
            low = np.minimum(open_, close) * np.exp(-(wick * np.abs(draws[:, 3]) + _WICK_FLOOR))
            volume = np.maximum(np.round(base_volume * np.exp(0.4 * draws[:, 4] - 0.08)), 1.0)
            opens[i], highs[i], lows[i], closes[i], volumes[i] = open_, high, low, close, volume
        session_array = np.array(days, dtype="datetime64[D]")
        ticker_index = np.tile(np.arange(k, dtype=np.uint32), n)
        panel = pl.DataFrame(
            {
                "ticker": pl.Series(self.tickers, dtype=pl.String).gather(ticker_index),
                "date": pl.Series(np.repeat(session_array, k), dtype=pl.Date),
                # (k, n) -> (n, k) -> flat: date-major, tickers in configured order within a date
                "open": opens.T.ravel(),
                "high": highs.T.ravel(),
                "low": lows.T.ravel(),
                "close": closes.T.ravel(),
                "volume": volumes.T.ravel(),
                "origin": pl.repeat(self.origin, n * k, dtype=pl.String, eager=True),
                "parse_errors": pl.repeat(None, n * k, dtype=pl.String, eager=True),
            },
            schema=RAW_BARS_SCHEMA,
        )
        if list(self.tickers) != sorted(self.tickers):
            panel = panel.sort(["date", "ticker"], maintain_order=True)
        self._cache["session_array"] = session_array
        self._cache["panel"] = panel
        return panel

    def _parameters(self, ticker: str) -> tuple[float, float, float]:
        """``(drift, vol, base volume)`` of ``ticker``: configured values, else seeded draws."""
        u_drift, u_vol, u_volume = _stream(self.seed, ticker, 0).random(3)
        mu = _lookup(self.drift, ticker)
        sigma = _lookup(self.vol, ticker)
        if mu is None:
            mu = _DRIFT_RANGE[0] + (_DRIFT_RANGE[1] - _DRIFT_RANGE[0]) * u_drift
        if sigma is None:
            sigma = _VOL_RANGE[0] + (_VOL_RANGE[1] - _VOL_RANGE[0]) * u_vol
        lo, hi = _LOG10_VOLUME_RANGE
        return float(mu), float(sigma), float(10 ** (lo + (hi - lo) * u_volume))


def _lookup(value: float | dict[str, float] | None, ticker: str) -> float | None:
    if isinstance(value, dict):
        return value.get(ticker)
    return value


def _values(
    value: float | dict[str, float] | None, tickers: tuple[str, ...]
) -> list[tuple[str, float]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    return [(t, value) for t in tickers]


def _apply_value_faults(frame: pl.DataFrame, faults: list[Fault]) -> pl.DataFrame:
    """Apply the value-changing faults to the matching ``(ticker, date)`` rows of ``frame``.

    On one row they apply in the order spike, high/low swap, negative close, NaN close.
    """
    if not faults:
        return frame
    flags: dict[tuple[str, dt.date], set[str]] = {}
    for fault in faults:
        flags.setdefault((fault.ticker, fault.date), set()).add(fault.kind)
    keys = list(flags)
    flag_frame = pl.DataFrame(
        {
            "ticker": [t for t, _ in keys],
            "date": [d for _, d in keys],
            **{f"_{kind}": [kind in flags[key] for key in keys] for kind in _VALUE_KINDS},
        },
        schema_overrides={"date": pl.Date},
    )
    flag_cols = [f"_{kind}" for kind in _VALUE_KINDS]
    hit = {kind: pl.col(f"_{kind}").fill_null(False) for kind in _VALUE_KINDS}
    spiked = pl.col("close") * 10.0
    return (
        frame.join(flag_frame, on=["ticker", "date"], how="left", maintain_order="left")
        .with_columns(
            pl.when(hit["spike_10x"])
            .then(pl.max_horizontal(pl.col("high"), spiked))
            .otherwise(pl.col("high"))
            .alias("high"),
            pl.when(hit["spike_10x"]).then(spiked).otherwise(pl.col("close")).alias("close"),
        )
        .with_columns(
            pl.when(hit["high_lt_low"]).then(pl.col("low")).otherwise(pl.col("high")).alias("high"),
            pl.when(hit["high_lt_low"]).then(pl.col("high")).otherwise(pl.col("low")).alias("low"),
        )
        .with_columns(
            pl.when(hit["negative_price"])
            .then(-pl.col("close").abs())
            .otherwise(pl.col("close"))
            .alias("close")
        )
        .with_columns(
            pl.when(hit["nan"]).then(float("nan")).otherwise(pl.col("close")).alias("close")
        )
        .drop(flag_cols)
    )
