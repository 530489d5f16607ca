"""Errors a market-data source raises when a fetch fails, split by whether retrying can help.

A source never retries by itself: it raises :class:`TransientSourceError` for failures a later
attempt may not hit (network down, timeouts, rate limits, HTTP 5xx) and
:class:`PermanentSourceError` for failures that will repeat (bad arguments, a vendor payload of an
unexpected shape, HTTP 4xx). The orchestration layer retries the first with exponential backoff and
jitter and fails fast on the second. Both carry the source name, the tickers and the date range and
name them in their message, so a failed run says what to re-fetch. :func:`is_transient_exception`
is the shared rule for raw exceptions (``requests``, ``curl_cffi``, sockets) from vendor libraries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

__all__ = [
    "PermanentSourceError",
    "SourceError",
    "TransientSourceError",
    "is_transient_exception",
]


class SourceError(RuntimeError):
    """A market-data fetch failed; the message names the source, tickers and date range.

    Parameters
    ----------
    source:
        The source's ``name`` (``"yfinance"``).
    tickers:
        The tickers the failure concerns (all requested ones when the vendor does not say).
    start, end:
        The requested date range, both inclusive.
    reason:
        What went wrong, in the vendor's words where possible.

    >>> err = TransientSourceError("yfinance", ["AAPL"], dt.date(2024, 1, 2), dt.date(2024, 1, 5),
    ...                            "DNSError('no host')")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    yfinance: transient failure fetching ['AAPL'] for 2024-01-02..2024-01-05: DNSError('no host');
    retrying later may succeed
    >>> err.retryable, err.tickers
    (True, ('AAPL',))
    """

    retryable: bool = False
    kind: str = "failure"
    hint: str = ""

    def __init__(
        self,
        source: str,
        tickers: Sequence[str],
        start: dt.date,
        end: dt.date,
        reason: str,
    ) -> None:
        self.source = source
        self.tickers = tuple(tickers)
        self.start = start
        self.end = end
        self.reason = reason
        message = (
            f"{source}: {self.kind} fetching {list(self.tickers)} for "
            f"{start.isoformat()}..{end.isoformat()}: {reason}"
        )
        super().__init__(f"{message}; {self.hint}" if self.hint else message)

    def __reduce__(self):  # keep the structured fields through pickling (multiprocess executors)
        return (type(self), (self.source, self.tickers, self.start, self.end, self.reason))


class TransientSourceError(SourceError):
    """A failure a later attempt may not hit: network, timeout, rate limit, HTTP 5xx."""

    retryable = True
    kind = "transient failure"
    hint = "retrying later may succeed"


class PermanentSourceError(SourceError):
    """A failure that will repeat on retry: fix the configuration, the tickers or the source."""

    retryable = False
    kind = "permanent failure"
    hint = "retrying will not help"


_TRANSIENT_TYPE_NAMES = frozenset(
    {
        "ChunkedEncodingError",
        "ConnectTimeout",
        "ConnectTimeoutError",
        "ConnectionError",
        "DNSError",
        "IncompleteRead",
        "NameResolutionError",
        "NewConnectionError",
        "ProtocolError",
        "ProxyError",
        "ReadTimeout",
        "ReadTimeoutError",
        "RemoteDisconnected",
        "SSLError",
        "Timeout",
        "TimeoutError",
        "YFRateLimitError",
        "gaierror",
        "timeout",
    }
)
"""Exception class names (anywhere in the MRO) that mean "try again later", matched by name so that
``requests``, ``urllib3``, ``curl_cffi`` and ``yfinance`` need not be imported to recognise them."""

_TRANSIENT_STATUS = re.compile(r"^(?:429|5\d\d)$")


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def is_transient_exception(exc: BaseException) -> bool:
    """Whether retrying the call that raised ``exc`` may succeed.

    True for connection, DNS, proxy and TLS failures, timeouts, rate limits and HTTP errors whose
    response status is 429 or 5xx; false for everything else (HTTP 4xx, parsing errors, bugs).

    >>> is_transient_exception(ConnectionResetError("peer reset"))
    True
    >>> is_transient_exception(ValueError("bad interval"))
    False
    """
    code = _status_code(exc)
    if code is not None:
        return bool(_TRANSIENT_STATUS.match(str(code)))
    return any(klass.__name__ in _TRANSIENT_TYPE_NAMES for klass in type(exc).__mro__)
