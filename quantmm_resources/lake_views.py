"""DuckDB views over the Parquet lake, for cross-partition windows and SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.lake import Lake, LakeLayout


def connect_lake(lake: LakeLayout | Path, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per asset present in the lake."""
    lake = Lake(lake) if isinstance(lake, Path) else lake
    con = con or duckdb.connect()
    for asset in lake.asset_names():
        con.execute(
            f"CREATE OR REPLACE VIEW {asset} AS "
            f"SELECT * FROM read_parquet('{lake.pattern(asset)}', hive_partitioning = false, union_by_name = true)"
        )
    return con


def daily_counts(lake: LakeLayout | Path) -> pl.DataFrame:
    """Rows per (asset, market/None, symbol/None, UTC date) for every raw asset in the lake."""
    con = connect_lake(lake)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    parts = []
    for name, schema in RAW_SCHEMAS.items():
        if name not in views:
            continue
        market = "market" if name == "market_bars_5m" else "NULL"
        symbol = "symbol" if schema.partitioned_by_symbol else "NULL"
        parts.append(
            f"SELECT '{name}' AS asset, CAST({market} AS VARCHAR) AS kind_filter, CAST({symbol} AS VARCHAR) AS symbol, "
            f"CAST(timezone('UTC', ts_event) AS DATE) AS date, count(*) AS rows FROM {name} GROUP BY ALL"
        )
    schema = {"asset": pl.Utf8, "kind_filter": pl.Utf8, "symbol": pl.Utf8, "date": pl.Date, "rows": pl.Int64}
    if not parts:
        return pl.DataFrame(schema=schema)
    return con.sql(" UNION ALL ".join(parts)).pl().cast(schema)


def bar_span(lake: LakeLayout | Path, market: str | None = "perp") -> tuple[datetime, datetime, list[str]] | None:
    """First and last ``ts_event`` (UTC) of the lake's 5-minute bars of ``market`` (None: every market) and the
    symbols they cover (sorted); None when the lake holds no such bars."""
    lake = Lake(lake) if isinstance(lake, Path) else lake
    if not lake.has("market_bars_5m"):
        return None
    where = f"WHERE market = '{market}'" if market else ""
    ((first, last, symbols),) = duckdb.sql(
        "SELECT min(ts_event), max(ts_event), list(DISTINCT symbol ORDER BY symbol) "
        f"FROM read_parquet('{lake.pattern('market_bars_5m')}', hive_partitioning = false) {where}"
    ).fetchall()
    if first is None:
        return None
    return first.astimezone(UTC), last.astimezone(UTC), list(symbols)
