"""DuckDB views over the Parquet lake, for cross-partition windows and SQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.io_manager import FILE_NAME, partition_dir, read_partition_files


def connect_lake(lake_dir: Path, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per asset directory present in the lake."""
    con = con or duckdb.connect()
    for asset_dir in sorted(p for p in Path(lake_dir).glob("*") if p.is_dir()):
        if any(asset_dir.rglob("*.parquet")):
            pattern = str(asset_dir / "**" / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE VIEW {asset_dir.name} AS "
                f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = false, union_by_name = true)"
            )
    return con


def daily_counts(lake_dir: Path) -> pl.DataFrame:
    """Rows per (asset, market/None, symbol/None, UTC date) for every raw asset in the lake."""
    con = connect_lake(lake_dir)
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


class LakeResource(dg.ConfigurableResource):
    """Read access to the lake for assets that scan it whole (readiness audit, reports)."""

    base_dir: str

    @property
    def path(self) -> Path:
        return Path(self.base_dir)

    def daily_counts(self) -> pl.DataFrame:
        return daily_counts(self.path)

    def read_partitions(self, asset: str, keys: list[str]) -> pl.DataFrame:
        """Rows of ``asset`` in the given partitions (those never materialized read as no rows)."""
        paths = [partition_dir(self.path / asset, k) / FILE_NAME for k in keys]
        present = [p for p in paths if p.exists()]
        if not present:
            return RAW_SCHEMAS[asset].empty() if asset in RAW_SCHEMAS else pl.DataFrame()
        return read_partition_files(present)
