"""Per-partition metadata of every partitioned asset (raw, derived, macro): rows, rejected rows, completeness."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.defs.partitions import day_start

# Dagster validates each per-partition metadata call against the whole run range (quadratic): above this many
# partitions (a backfill) the per-partition figures go into one run-level JSON instead.
PER_PARTITION_METADATA_MAX = 120
LISTED_MAX = 200  # partitions named in each run-level JSON list


def rows_by_partition(frame: pl.DataFrame, key: pl.Expr) -> dict[str, int]:
    """Count the rows of ``frame`` per partition key (``key`` computes a row's key)."""
    return dict(frame.group_by(key.alias("_partition")).len().iter_rows()) if len(frame) else {}


def days_not_over(keys: Collection[str], now: datetime, settle_lag: timedelta = timedelta(0)) -> set[str]:
    """Return the keys whose day, plus ``settle_lag``, is not over at ``now`` (``YYYY-MM-DD[|SYMBOL]`` keys)."""
    end = timedelta(days=1) + settle_lag
    return {k for k in keys if day_start(date.fromisoformat(k.partition("|")[0])) + end > now}


def partition_metadata(
    context: dg.AssetExecutionContext,
    keys: list[str],
    rows: Mapping[str, int],
    incomplete: Collection[str],
    rejected: Mapping[str, int] | None = None,
) -> dict:
    """Report rows (and, for raw assets, rejected rows) and completeness of each partition; return run metadata.

    Small runs get them on each partition; above ``PER_PARTITION_METADATA_MAX`` partitions the run-level
    metadata lists the incomplete and empty partitions (and those with rejects) instead.
    """
    todo = set(incomplete)
    unfinished = [k for k in keys if k in todo]
    summary: dict = {"run_complete": not unfinished}
    if len(keys) <= PER_PARTITION_METADATA_MAX:
        for k in keys:
            counts = {"rows": rows.get(k, 0)} | ({"rejected_rows": rejected.get(k, 0)} if rejected is not None else {})
            context.add_asset_metadata(counts | {"complete": k not in todo}, partition_key=k)
        return summary
    summary |= {
        "incomplete_partitions": dg.MetadataValue.json(unfinished[:LISTED_MAX]),
        "empty_partitions": dg.MetadataValue.json([k for k in keys if not rows.get(k)][:LISTED_MAX]),
    }
    if rejected is not None:
        summary["partitions_with_rejects"] = dg.MetadataValue.json(dict(sorted(rejected.items())[:LISTED_MAX]))
    return summary
