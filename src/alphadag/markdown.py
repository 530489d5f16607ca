"""Tiny helpers to show polars frames as Markdown in Dagster metadata."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, limit: int = 50) -> str:
    """A GitHub-flavoured Markdown table of the first ``limit`` rows (``none`` when empty).

    >>> print(markdown_table(pl.DataFrame({"a": [1]})))
    | a |
    |---|
    | 1 |
    """
    if frame.height == 0:
        return "none"
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=limit,
        tbl_cols=-1,
        fmt_str_lengths=80,
    ):
        return str(frame.head(limit))
