"""Export the lake as an offline bundle in the generic canonical formats (docs/bundle.md).

Reads ``lake_dir/<asset>/date=YYYY-MM-DD[/symbol=SYM]/data.parquet`` and writes, per raw asset, the source
columns (everything but the derived ``ts_available`` and ``symbols``):

- exchange assets: ``<asset>/<asset>-<SYMBOL>-<YYYY-MM>.csv``
- ``macro_series``: ``macro_series/macro_series-<YYYY>.csv``
- social assets: ``social/<asset>-<YYYY-MM>.jsonl`` (JSON keeps multi-line text and empty strings exact)

plus a ``bundle.toml`` recording what was exported. Timestamps (``ts_event``, and ``engagement_observed_at``
of the social assets) are written as ISO-8601 UTC with microseconds, nulls as empty / JSON null; the
``source`` column is kept so lineage survives the round trip.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.lake import Lake

EXCHANGE_ASSETS = ("market_bars_5m", "funding_rates", "open_interest", "derivatives_metrics")
SOCIAL_ASSETS = ("social_posts_raw", "social_comments_raw")
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


def read_lake_asset(lake_dir: Path, asset: str) -> pl.DataFrame:
    """All partitions of ``asset`` in the lake, restricted to its source columns (empty if absent)."""
    schema = RAW_SCHEMAS[asset]
    paths = Lake(Path(lake_dir)).files(asset, required=False)
    if not paths:
        return pl.DataFrame(schema={c: schema.columns[c] for c in schema.source_columns})
    frame = pl.concat([pl.read_parquet(p, hive_partitioning=False) for p in paths], how="diagonal_relaxed")
    missing = [pl.lit(None, schema.columns[c]).alias(c) for c in schema.source_columns if c not in frame.columns]
    return frame.with_columns(missing).select(schema.source_columns)


def _ts_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every datetime column (``ts_event``, ``engagement_observed_at``) as ISO-8601 UTC text; nulls stay null."""
    out = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            ts = pl.col(name)
            ts = ts.dt.convert_time_zone("UTC") if dtype.time_zone else ts.dt.replace_time_zone("UTC")
            out.append(ts.dt.strftime(TS_FORMAT).alias(name))
    return frame.with_columns(out)


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    _ts_text(frame).write_csv(tmp)
    tmp.replace(path)


def _write_jsonl(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    _ts_text(frame).write_ndjson(tmp)
    tmp.replace(path)


def _chunks(frame: pl.DataFrame, by: list[str], fmt: str) -> list[tuple[tuple, pl.DataFrame]]:
    """Split by ``by`` columns and the ``ts_event`` period formatted with ``fmt``."""
    keyed = frame.with_columns(pl.col("ts_event").dt.strftime(fmt).fill_null("undated").alias("_period"))
    parts = keyed.sort("ts_event", nulls_last=True, maintain_order=True).partition_by(
        [*by, "_period"], as_dict=True, maintain_order=True
    )
    return [(k, v.drop("_period")) for k, v in sorted(parts.items(), key=lambda kv: str(kv[0]))]


def export_bundle(lake_dir: Path, out_dir: Path) -> dict:
    """Write a bundle of every raw asset in ``lake_dir`` to ``out_dir``; return rows and files per asset."""
    lake_dir, out_dir = Path(lake_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    for asset in RAW_SCHEMAS:
        frame = read_lake_asset(lake_dir, asset)
        if frame.is_empty():
            continue
        files: list[str] = []
        if asset in EXCHANGE_ASSETS:
            for (symbol, period), part in _chunks(frame, ["symbol"], "%Y-%m"):
                path = out_dir / asset / f"{asset}-{symbol or 'UNKNOWN'}-{period}.csv"
                _write_csv(part, path)
                files.append(path.relative_to(out_dir).as_posix())
        elif asset == "macro_series":
            for (period,), part in _chunks(frame, [], "%Y"):
                path = out_dir / asset / f"{asset}-{period}.csv"
                _write_csv(part, path)
                files.append(path.relative_to(out_dir).as_posix())
        else:
            for (period,), part in _chunks(frame, [], "%Y-%m"):
                path = out_dir / "social" / f"{asset}-{period}.jsonl"
                _write_jsonl(part, path)
                files.append(path.relative_to(out_dir).as_posix())
        summary[asset] = {"rows": frame.height, "files": files}
    manifest = [
        "# quantmm offline bundle (generic canonical formats; see docs/bundle.md)",
        f"exported_at = {json.dumps(datetime.now(UTC).isoformat())}",
        f"lake_dir = {json.dumps(str(lake_dir.resolve()))}",
        "",
    ]
    for asset, info in summary.items():
        manifest += [f"[assets.{asset}]", f"rows = {info['rows']}", f"files = {len(info['files'])}", ""]
    (out_dir / "bundle.toml").write_text("\n".join(manifest))
    return {"out_dir": str(out_dir), "assets": summary}
