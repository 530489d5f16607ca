"""Trailing maximum drawdown against a brute-force loop over all (peak, trough) pairs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphadag.risk import max_drawdown


def brute_force(prices):
    best = 0.0
    for i in range(len(prices)):
        for j in range(i, len(prices)):
            best = max(best, (prices[i] - prices[j]) / prices[i])
    return best


prices_lists = st.lists(st.floats(min_value=0.01, max_value=1e4), min_size=1, max_size=60)


@given(prices=prices_lists, window=st.one_of(st.none(), st.integers(min_value=1, max_value=80)))
def test_max_drawdown_matches_brute_force(prices, window):
    tail = prices if window is None else prices[-window:]
    got = max_drawdown(prices, window=window)
    assert got == pytest.approx(brute_force(tail), rel=1e-12, abs=1e-15)
    assert 0.0 <= got < 1.0


def test_rising_path_has_no_drawdown():
    assert max_drawdown([1.0, 2.0, 3.0]) == 0.0


def test_max_drawdown_errors():
    with pytest.raises(ValueError, match="> 0"):
        max_drawdown([1.0, 0.0])
    with pytest.raises(ValueError, match="window"):
        max_drawdown([1.0], window=0)
