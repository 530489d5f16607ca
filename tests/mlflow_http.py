"""MLflow's REST client against an unreachable server: a closed port, and a record of the
retries and timeout each request is made with (what the bounded-waits tests assert on)."""

from __future__ import annotations

import socket

import pytest

from alphadag.models.registry import HTTP_WAIT_DEFAULTS


def closed_port_uri() -> str:
    """An http URI on this machine where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def record_http_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every HTTP request MLflow's REST client makes, with the retries and timeout it used.

    The ``MLFLOW_HTTP_REQUEST_*`` variables are blanked for the test (restored after it): only
    what the code under test sets is in force.
    """
    from mlflow.utils import rest_utils

    for key in HTTP_WAIT_DEFAULTS:
        monkeypatch.setenv(key, "")
    calls: list[dict] = []
    real = rest_utils._get_http_response_with_retries

    def recording(method, url, max_retries, backoff_factor, *args, **kwargs):
        calls.append(
            {
                "url": url,
                "max_retries": max_retries,
                "backoff_factor": backoff_factor,
                "timeout": kwargs.get("timeout"),
            }
        )
        return real(method, url, max_retries, backoff_factor, *args, **kwargs)

    monkeypatch.setattr(rest_utils, "_get_http_response_with_retries", recording)
    return calls


def bounds(calls: list[dict]) -> set[tuple[int, int, int]]:
    """The distinct ``(max_retries, backoff_factor, timeout)`` the recorded requests used."""
    return {(c["max_retries"], c["backoff_factor"], c["timeout"]) for c in calls}
