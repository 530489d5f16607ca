"""Ticker canonicalisation against an allow-list pattern.

Every ticker is canonicalised before it reaches a file path, a partition key or a query: upper case,
surrounding whitespace removed, share-class separators ``.`` and ``/`` written as ``-`` (``BRK.B`` ->
``BRK-B``), and an optional leading ``^`` for indices (``^GSPC``). Anything that does not then match
:data:`TICKER_PATTERN` is rejected with a :class:`TickerError` naming the offending string.
"""

from __future__ import annotations

import re

TICKER_PATTERN = re.compile(r"^\^?[A-Z0-9](?:[A-Z0-9-]{0,13}[A-Z0-9])?$")
"""Allowed canonical tickers: optional ``^``, then 1-15 of ``A-Z 0-9 -``, not ending in ``-``."""

_SEPARATORS = str.maketrans({".": "-", "/": "-"})


class TickerError(ValueError):
    """A ticker string that cannot be canonicalised into the allow-list pattern."""


def canonical_ticker(raw: object) -> str:
    """Return the canonical form of ``raw`` or raise :class:`TickerError`.

    Parameters
    ----------
    raw:
        The ticker as a vendor delivered it (``"brk.b"``, ``" AAPL "``, ``"^gspc"``).

    >>> canonical_ticker(" brk.b ")
    'BRK-B'
    >>> canonical_ticker("^gspc")
    '^GSPC'
    >>> canonical_ticker("../etc/passwd")
    Traceback (most recent call last):
    ...
    alphadag.market.tickers.TickerError: ticker '../etc/passwd' is not allowed: ...
    """
    if not isinstance(raw, str):
        raise TickerError(f"ticker {raw!r} is not a string")
    candidate = raw.strip().upper().translate(_SEPARATORS)
    if not TICKER_PATTERN.fullmatch(candidate):
        raise TickerError(
            f"ticker {raw!r} is not allowed: after canonicalisation ({candidate!r}) it must match "
            f"{TICKER_PATTERN.pattern} (letters, digits and '-', optional leading '^', at most 15)"
        )
    return candidate


def try_canonical_ticker(raw: object) -> str | None:
    """Like :func:`canonical_ticker` but return ``None`` for a rejected ticker.

    >>> try_canonical_ticker("msft"), try_canonical_ticker("a b")
    ('MSFT', None)
    """
    try:
        return canonical_ticker(raw)
    except TickerError:
        return None


def canonical_tickers(raws: list[str] | tuple[str, ...]) -> list[str]:
    """Canonicalise a configured ticker list, raising on the first bad one, keeping order, deduped.

    >>> canonical_tickers(["aapl", "AAPL", "brk/b"])
    ['AAPL', 'BRK-B']
    """
    seen: dict[str, None] = {}
    for raw in raws:
        seen.setdefault(canonical_ticker(raw), None)
    return list(seen)
