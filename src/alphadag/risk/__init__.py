"""Pure risk figures: volatility forecasts, one-day VaR/CVaR and their backtests, drawdown, intervals.

No dagster here. Conventions shared by every module: returns are daily *simple* returns
``close_t / close_{t-1} - 1``; a forecast or figure "at ``t``" uses data up to the close of ``t``
only; VaR and CVaR are **positive** one-day loss fractions (``VaR_95 = -Q_5%(r)``, CVaR the mean
loss beyond VaR, so ``CVaR >= VaR``). :func:`risk_table` assembles the per-ticker figures of one
session from the bars contract (VaR by filtered historical simulation by default); the other
functions are its parts, usable on their own. :mod:`alphadag.risk.var_backtest` tests served VaR
forecasts against the returns that followed (Kupiec, Christoffersen, conditional coverage).
"""

from alphadag.risk.drawdown import max_drawdown
from alphadag.risk.intervals import conformal_interval, conformal_quantile, min_calibration_size
from alphadag.risk.portfolio import VarMethod, portfolio_var_cvar, top_k_weights
from alphadag.risk.table import (
    DEFAULT_MIN_HIST_OBS,
    DEFAULT_MIN_OBS,
    DEFAULT_WINDOW,
    RISK_TABLE_SCHEMA,
    TABLE_VAR_METHODS,
    TableVarMethod,
    risk_table,
)
from alphadag.risk.var import (
    LEVELS,
    VarCvar,
    historical_var_cvar,
    normal_tail_constants,
    parametric_var_cvar,
)
from alphadag.risk.var_backtest import (
    CoverageTest,
    breaches,
    christoffersen_ind,
    coverage_table,
    coverage_test,
    kupiec_pof,
    transition_counts,
)
from alphadag.risk.volatility import (
    DEFAULT_LAMBDA,
    GARCH_MIN_OBS,
    GARCH_SCALE,
    VOL_METHODS,
    VolForecast,
    VolMethod,
    ewma_sigma,
    ewma_volatility,
    garch_volatility,
    simple_returns,
)

__all__ = [
    "DEFAULT_LAMBDA",
    "DEFAULT_MIN_HIST_OBS",
    "DEFAULT_MIN_OBS",
    "DEFAULT_WINDOW",
    "GARCH_MIN_OBS",
    "GARCH_SCALE",
    "LEVELS",
    "RISK_TABLE_SCHEMA",
    "TABLE_VAR_METHODS",
    "VOL_METHODS",
    "CoverageTest",
    "TableVarMethod",
    "VarCvar",
    "VarMethod",
    "VolForecast",
    "VolMethod",
    "breaches",
    "christoffersen_ind",
    "conformal_interval",
    "conformal_quantile",
    "coverage_table",
    "coverage_test",
    "ewma_sigma",
    "ewma_volatility",
    "garch_volatility",
    "historical_var_cvar",
    "kupiec_pof",
    "max_drawdown",
    "min_calibration_size",
    "normal_tail_constants",
    "parametric_var_cvar",
    "portfolio_var_cvar",
    "risk_table",
    "simple_returns",
    "top_k_weights",
    "transition_counts",
]
