"""Polars Parquet IO manager: one file per partition under ``$QUANTMM_HOME/lake/<asset>/`` (the layout is the lake
API's, ``quantmm_resources/lake.py``).

A run over a range of partitions (single-run backfill) hands over one frame; it is split here by each row's
partition (UTC date of ``ts_event``, plus ``symbol``) and every partition of the run is written, an empty one
included, so re-materializing a partition replaces it (idempotent) and never leaves stale rows. One exception:
an asset may hand over a ``LakeWrite`` naming partitions to keep: those the source sent nothing for (a live
API that only serves recent history, a bundle without that symbol) or whose fetch failed keep a non-empty
file they already had; the run's metadata counts them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq

from quantmm_resources.lake import Lake, is_dated, write_atomic

# Input metadata: partitions of this input that are not materialized are read as no rows (look-back windows).
PARTIAL_OK = "partial_ok"


def _row_partition_keys(df: pl.DataFrame) -> pl.Expr:
    day = pl.col("ts_event").dt.strftime("%Y-%m-%d")
    return pl.concat_str([day, pl.lit("|"), pl.col("symbol")]) if "symbol" in df.columns else day


@dataclass(frozen=True)
class LakeWrite:
    """Rows for the run's partitions, and the partitions whose existing non-empty file must be left as is
    (the source sent nothing for them, or their fetch failed)."""

    frame: pl.DataFrame
    keep_existing: frozenset[str] = frozenset()


def _has_rows(path: Path) -> bool:
    return path.exists() and pq.ParquetFile(path).metadata.num_rows > 0


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars DataFrames as Parquet in the lake; loads them back (concatenating partition ranges)."""

    base_dir: str

    def _lake(self) -> Lake:
        return Lake(Path(self.base_dir))

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | LakeWrite | None) -> None:
        if obj is None:
            return
        keep_existing: frozenset[str] = frozenset()
        if isinstance(obj, LakeWrite):
            obj, keep_existing = obj.frame, obj.keep_existing
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj)}")
        lake, asset = self._lake(), "/".join(context.asset_key.path)
        if not context.has_asset_partitions:
            write_atomic(obj, lake.partition_file(asset))
            context.add_output_metadata({"lake_path": dg.MetadataValue.path(str(lake.partition_file(asset)))})
            return
        keys = list(context.asset_partition_keys)
        if len(keys) == 1 and ("ts_event" not in obj.columns or not is_dated(keys[0])):  # e.g. one backbone
            write_atomic(obj, lake.partition_file(asset, keys[0]))
            return
        parts: dict[str, pl.DataFrame] = {}
        if len(obj):
            obj = obj.with_columns(_row_partition_keys(obj).alias("_pk"))
            parts = {k[0]: v for k, v in obj.partition_by("_pk", as_dict=True, include_key=False).items()}
        stray = sorted(set(parts) - set(keys))
        if stray:
            raise ValueError(f"{context.asset_key.to_user_string()}: rows for partitions outside this run: {stray[:5]}")
        empty = obj.drop("_pk", strict=False).clear()
        t0 = time.perf_counter()
        kept = []
        for key in keys:
            path = lake.partition_file(asset, key)
            if key in keep_existing and key not in parts and _has_rows(path):
                kept.append(key)  # nothing new for it: keep what the lake has rather than erase it
                continue
            write_atomic(parts.get(key, empty), path)
        if kept:
            context.log.warning(f"{len(kept)} partition(s) got no rows and keep their earlier data: {kept[:5]}")
        context.add_output_metadata(
            {
                "lake_path": dg.MetadataValue.path(str(lake.asset_dir(asset))),
                "partition_files_written": len(keys) - len(kept),
                "partitions_kept_unchanged": len(kept),
                "write_seconds": round(time.perf_counter() - t0, 3),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        lake, asset = self._lake(), "/".join(context.asset_key.path)
        if not context.has_asset_partitions:
            return pl.read_parquet(lake.partition_file(asset))
        keys = [str(k) for k in context.asset_partition_keys]
        present = {k for k in keys if lake.partition_file(asset, k).exists()}
        name = context.asset_key.to_user_string()
        missing = [k for k in keys if k not in present]
        holes = interior_gaps(keys, present)
        if missing and not ((context.definition_metadata or {}).get(PARTIAL_OK) and not holes):
            raise FileNotFoundError(
                f"{name}: {len(missing)} partition(s) not materialized"
                + (f", {len(holes)} of them between materialized ones" if holes else "")
                + f", e.g. {(holes or missing)[:3]}: materialize them first"
            )
        if missing:  # before the data begins / after it ends (look-back, look-ahead): no rows, said in the log
            context.log.warning(
                f"{name}: {len(missing)} look-back/ahead partition(s) at the edges not materialized: {missing[:3]}"
            )
        return lake.read_partitions(asset, [k for k in keys if k in present])


def interior_gaps(keys: list[str], present: set[str]) -> list[str]:
    """Missing keys that lie between materialized ones of the same symbol (a hole, not the data's edge)."""
    by_symbol: dict[str, list[str]] = {}
    for key in sorted(keys):
        by_symbol.setdefault(key.partition("|")[2], []).append(key)
    holes = []
    for ordered in by_symbol.values():
        have = [i for i, k in enumerate(ordered) if k in present]
        if have:
            holes += [k for k in ordered[have[0] : have[-1] + 1] if k not in present]
    return holes
