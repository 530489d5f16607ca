"""Diagnostic plots of a trained model, written as PNG files for MLflow and the Dagster UI.

:func:`predicted_vs_realised_png` draws realised against predicted returns of a held-out segment:
a hexbin density of all rows, the mean realised return per predicted-return decile (a model with
signal rises from left to right) and the identity line. matplotlib runs on the Agg backend, so no
display is needed.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["predicted_vs_realised_png"]


def predicted_vs_realised_png(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "test segment: realised vs predicted",
    bins: int = 10,
) -> str:
    """Write the realised-vs-predicted plot to ``path`` (PNG); returns the path.

    >>> import tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> p = rng.normal(size=500)
    >>> out = predicted_vs_realised_png(p + rng.normal(size=500), p,
    ...                                 pathlib.Path(tempfile.mkdtemp()) / "p.png")
    >>> pathlib.Path(out).read_bytes()[:4] == b"\\x89PNG"
    True
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1 or t.size == 0:
        raise ValueError(
            f"y_true and y_pred must be equal, non-empty vectors; got {t.shape}, {p.shape}"
        )
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        ax.hexbin(p, t, gridsize=40, bins="log", cmap="Blues", mincnt=1)
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, bins + 1)))
        if edges.size > 1:
            which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
            centres = np.array([p[which == i].mean() for i in range(edges.size - 1)])
            means = np.array([t[which == i].mean() for i in range(edges.size - 1)])
            ax.plot(centres, means, "o-", color="tab:red", label="mean realised per decile")
        lim = np.quantile(np.abs(np.concatenate([p, t])), 0.99)
        ax.plot([-lim, lim], [-lim, lim], "--", color="grey", lw=1, label="y = x")
        ax.set_xlabel("predicted log return")
        ax.set_ylabel("realised log return")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return os.fspath(path)
