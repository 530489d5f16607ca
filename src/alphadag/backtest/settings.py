"""``BacktestSettings``: the knobs of a backtest (costs, sizing, risk limits), checked once.

:func:`~alphadag.backtest.engine.run_backtest` and :func:`~alphadag.backtest.engine.run_grid`
take these knobs either as keywords (``cash=..., commission=...``) or as one
``settings=BacktestSettings(...)`` (keywords then override its fields); either way they are
built into this one frozen type, whose fields are the only list of knob names and defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SIZINGS", "BacktestSettings"]

SIZINGS = ("all_in", "equal_weight", "weight", "vol_target")
"""The ``sizing`` rules, in the simulator's code order."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class BacktestSettings:
    """The knobs of a backtest, validated when built (``ValueError`` naming the field).

    Costs: ``cash`` (starting cash, > 0); ``commission`` (a rate of the traded value in
    ``[0, 0.1)``) plus ``commission_fixed`` per order, at least ``commission_min``, charged on
    entry and on exit; ``slippage_bps`` moves every fill against the trade.
    Sizing: ``sizing`` one of ``all_in equal_weight weight vol_target`` (see
    :func:`~alphadag.backtest.engine.run_backtest`), ``fractional`` shares or whole ones,
    ``allow_short`` (negative signals short; otherwise they mean flat), ``target_vol`` and
    ``vol_window`` (``vol_target`` sizing: annualised target, window of daily returns).
    Risk limits (None: off): ``stop_loss`` and ``take_profit`` (fractions of the entry price),
    ``max_weight`` (of the previous close's equity per entry), ``max_gross_leverage``
    (default 1: no borrowing), ``drawdown_limit`` (a fraction below the running peak that
    flattens the book) with ``cooldown`` bars before trading resumes (None: never).

    >>> s = BacktestSettings(cash=1e6, commission=0.002, stop_loss=0.05)
    >>> s.replace(sizing="equal_weight").sizing, s.stop_loss
    ('equal_weight', 0.05)
    >>> BacktestSettings(cash=1e6, commission=0.002, sizing="kelly")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: sizing must be one of all_in, equal_weight, weight, vol_target, got 'kelly'
    """

    cash: float
    commission: float
    fractional: bool = False
    slippage_bps: float = 0.0
    allow_short: bool = False
    sizing: str = "all_in"
    commission_fixed: float = 0.0
    commission_min: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    max_weight: float | None = None
    max_gross_leverage: float = 1.0
    drawdown_limit: float | None = None
    cooldown: int | None = None
    target_vol: float = 0.15
    vol_window: int = 20

    def __post_init__(self) -> None:
        if not self.cash > 0:
            raise ValueError(f"cash must be positive, got {self.cash}")
        if not 0 <= self.commission < 0.1:
            raise ValueError(f"commission is a rate in [0, 0.1), got {self.commission}")
        for name in ("commission_fixed", "commission_min", "slippage_bps"):
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.sizing not in SIZINGS:
            raise ValueError(f"sizing must be one of {', '.join(SIZINGS)}, got {self.sizing!r}")
        for name, upper in (("stop_loss", 1.0), ("take_profit", math.inf), ("drawdown_limit", 1.0)):
            value = getattr(self, name)
            if value is not None and not 0 < value < upper:
                raise ValueError(f"{name} is a fraction in (0, {upper}), got {value}")
        if self.max_weight is not None and not self.max_weight > 0:
            raise ValueError(f"max_weight must be positive, got {self.max_weight}")
        if not self.max_gross_leverage > 0:
            raise ValueError(f"max_gross_leverage must be positive, got {self.max_gross_leverage}")
        if self.cooldown is not None and (not _is_int(self.cooldown) or self.cooldown < 1):
            raise ValueError(
                f"cooldown is a number of bars >= 1 (or None: forever), got {self.cooldown!r}"
            )
        if not self.target_vol > 0:
            raise ValueError(f"target_vol must be positive, got {self.target_vol}")
        if not _is_int(self.vol_window) or self.vol_window < 2:
            raise ValueError(f"vol_window must be an integer >= 2, got {self.vol_window!r}")

    def replace(self, **changes: Any) -> BacktestSettings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_keywords(
        cls, settings: BacktestSettings | None, knobs: Mapping[str, Any], *, caller: str
    ) -> BacktestSettings:
        """``settings`` with ``knobs`` (keywords of ``caller``) applied, or built from
        ``knobs`` alone; ``TypeError`` for a keyword that is not a knob, or when neither
        ``settings`` nor ``cash`` and ``commission`` are given."""
        unknown = sorted(set(knobs) - set(FIELDS))
        if unknown:
            raise TypeError(
                f"{caller}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"the settings are: {', '.join(FIELDS)}"
            )
        if settings is None:
            missing = [name for name in ("cash", "commission") if name not in knobs]
            if missing:
                raise TypeError(
                    f"{caller}() needs {' and '.join(f'{m}=' for m in missing)} "
                    "(or settings=BacktestSettings(...))"
                )
            return cls(**knobs)
        if not isinstance(settings, cls):
            raise TypeError(f"settings must be a BacktestSettings, got {type(settings).__name__}")
        return settings.replace(**knobs) if knobs else settings


FIELDS = tuple(f.name for f in dataclasses.fields(BacktestSettings))
"""The knob names, in declaration order."""
