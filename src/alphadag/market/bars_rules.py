"""The value rules of the ``bars`` contract, written once and built into all three checkers.

:data:`VALUE_RULES` is the list (column, check, bounds) that the raw-bar validator
(:mod:`alphadag.market.validation`, which quarantines a row breaking one), the pandera schema
(:mod:`alphadag.market.contracts`) and the Great Expectations suite
(:mod:`alphadag.market.gx_suite`) are generated from, so the three cannot drift apart:

- :class:`Bounds`: each of ``columns`` finite and above ``lower`` (strictly or not) where present.
  GX has no finiteness test, so its suite bounds the column by ``gx_max`` as well (a finite value
  far above any real one: ``inf`` fails it).
- :class:`Ordered`: ``column`` ``>=`` (or ``<=``) each of ``others`` on rows where both are present.

:data:`REQUIRED` lists the value columns that may not be null, :data:`KEY` the columns unique
together. The rules about the keys themselves differ by table (a raw ticker must canonicalise, a
validated one match :data:`alphadag.market.tickers.TICKER_PATTERN`) and stay with each checker.
No dagster here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from alphadag.market.schema import PRICE_COLUMNS

__all__ = [
    "KEY",
    "MAX_PRICE",
    "MAX_VOLUME",
    "REQUIRED",
    "VALUE_RULES",
    "Bounds",
    "Ordered",
    "violated",
]

MAX_PRICE = 1e12
"""GX's upper bound for an adjusted price: finite, far above any real one, so ``inf`` fails it."""

MAX_VOLUME = 1e15
"""GX's upper bound for a session volume: finite, far above any real one, so ``inf`` fails it."""

KEY: tuple[str, ...] = ("ticker", "date")
"""One row per key."""

REQUIRED: tuple[str, ...] = ("close",)
"""Value columns that must be present on every row (every source delivers a close)."""


@dataclass(frozen=True)
class Bounds:
    """Each of ``columns`` finite and ``> lower`` (``>= lower`` when ``inclusive``) where present.

    ``name`` is the validator's rule name, ``check`` the pandera check's name, ``gx_max`` the
    finite upper bound the GX suite uses to express "finite".
    """

    name: str
    check: str
    columns: tuple[str, ...]
    lower: float
    inclusive: bool
    gx_max: float


@dataclass(frozen=True)
class Ordered:
    """``column`` ``op`` each of ``others`` (``op`` is ``">="`` or ``"<="``) where both are present.

    ``name`` is both the validator's rule name and the pandera check's name.
    """

    name: str
    column: str
    op: Literal[">=", "<="]
    others: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        """``(a, b)`` pairs with ``a >= b`` each, in order.

        >>> Ordered("low_consistent", "low", "<=", ("open", "close")).pairs()
        [('open', 'low'), ('close', 'low')]
        """
        return [(self.column, o) if self.op == ">=" else (o, self.column) for o in self.others]


VALUE_RULES: tuple[Bounds | Ordered, ...] = (
    Bounds("price_finite_positive", "finite_positive", PRICE_COLUMNS, 0.0, False, MAX_PRICE),
    Ordered("high_consistent", "high", ">=", ("open", "close")),
    Ordered("low_consistent", "low", "<=", ("open", "close")),
    Bounds("volume_valid", "finite_non_negative", ("volume",), 0.0, True, MAX_VOLUME),
)
"""The value rules, in the order the validator reports them."""


def violated(rule: Bounds | Ordered, column: str | None = None) -> pl.Expr:
    """True where a row breaks ``rule`` (for a :class:`Bounds`, in ``column`` only if given).

    Null where nothing is known (an :class:`Ordered` rule with a value missing): callers treat
    that as no violation.

    >>> f = pl.DataFrame({"volume": [1.0, -1.0, float("inf"), None]})
    >>> f.select(violated(VALUE_RULES[-1]))["volume"].to_list()
    [False, True, True, False]
    """
    if isinstance(rule, Bounds):
        cols = rule.columns if column is None else (column,)
        # NaN compares greater than everything in polars, so finiteness is tested explicitly
        bad = [
            pl.col(c).is_not_null()
            & (
                ~pl.col(c).is_finite()
                | ((pl.col(c) < rule.lower) if rule.inclusive else (pl.col(c) <= rule.lower))
            )
            for c in cols
        ]
        return bad[0] if len(bad) == 1 else pl.any_horizontal(bad)
    breaks = [pl.col(a) < pl.col(b) for a, b in rule.pairs()]
    out = breaks[0]
    for b in breaks[1:]:
        out = out | b
    return out
