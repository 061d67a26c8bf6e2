"""The default fold spec over one year and the helpers the fold tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from quantmm_assets.core.folds import FOLD_SCHEMA, FoldSpec, walk_forward_folds

FIRST = datetime(2024, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = FoldSpec()
D = timedelta(days=1)
# The default spec over FIRST..LAST (366 days): grid window k tests [FIRST + 98d + 30k d, ...); windows 0..7 end
# by LAST - purge, so the folds are the newest three, numbered by their grid index.
F = (5, 6, 7)


def folds(spec: FoldSpec = SPEC) -> pl.DataFrame:
    return walk_forward_folds(FIRST, LAST, spec)


def select(df: pl.DataFrame, fold: int, kind: str, role: str, inner: int | None = None) -> pl.Expr:
    inner_sel = pl.col("inner").is_null() if inner is None else pl.col("inner") == inner
    return (pl.col("fold") == fold) & (pl.col("kind") == kind) & (pl.col("role") == role) & inner_sel


def interval(df: pl.DataFrame, fold: int, kind: str, role: str, inner: int | None = None) -> list[tuple]:
    return df.filter(select(df, fold, kind, role, inner)).select("start", "end").rows()


def edit(df: pl.DataFrame, cond: pl.Expr, **cols: datetime) -> pl.DataFrame:
    """Overwrite columns of the rows matching ``cond`` (a planted leak)."""
    out = df.with_columns(
        **{c: pl.when(cond).then(pl.lit(v, dtype=FOLD_SCHEMA[c])).otherwise(c) for c, v in cols.items()}
    )
    assert not out.equals(df)
    return out


def fold_numbers(df: pl.DataFrame) -> list[int]:
    return sorted(df["fold"].unique().to_list())


def anchor(first: datetime, spec: FoldSpec) -> datetime:
    """The start of grid window 0: min_train_days of train data, then the purge and the embargo."""
    return first + spec.min_train_days * D + spec.purge + spec.embargo
