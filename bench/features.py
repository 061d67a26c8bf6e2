"""``python -m bench features``: the feature layer on the real data in ../shared/data, printed as JSON.

1. Imports the bundle through Dagster (skipped when ``--home`` already holds it).
2. Embeds every distinct social text with MiniLM into a fresh cache (cold), then again (warm); fails when the
   encoder fell back to hashing.
3. The partitioned build: ``macro_features``, ``text_items`` and the date x symbol chain up to
   ``feature_matrix_main`` over every day but the last, as a user's backfill would (single-run backfills on the
   embedded SQLite instance), checks included.
4. The floor: a one-pass in-memory pandas reference of the market and derivatives features and their as-of join
   over the whole range (``bench.reference_market``); outputs compared within 1e-9; the ratio is the overhead.
5. The incremental case: the last day for every symbol.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bench.common import bench_paths, bench_settings
from quantmm_assets.defs.partitions import first_partition_day
from quantmm_jobs.cli.bundle_import import import_bundle
from quantmm_jobs.cli.runs import instance_for, run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import Lake
from quantmm_resources.lake_views import bar_span
from quantmm_resources.settings import QuantmmSettings


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _lake_frame(lake: Lake, asset: str) -> pl.DataFrame:
    frame = duckdb.sql(f"SELECT * FROM read_parquet('{lake.pattern(asset)}', union_by_name = true)").pl()
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))  # DuckDB says Etc/UTC


def bench_features(data_dir: Path | None = None, home: Path | None = None) -> dict:
    data_dir, home = bench_paths(data_dir, home, "features")
    settings = bench_settings(home, text_encoder="minilm")
    lake = Lake(settings.lake_dir)
    out: dict = {"bench": "features", "data": str(data_dir), "home": str(home)}
    instance = instance_for(settings)
    if not lake.has("market_bars_5m"):
        t0 = time.perf_counter()
        runs = import_bundle(data_dir, instance=instance, settings=settings)
        out["raw_import_seconds"] = round(time.perf_counter() - t0, 1)
        out["raw_import_success"] = all(r.success for r in runs)
    span = bar_span(lake)
    if span is None:
        raise FileNotFoundError(f"no perpetual bars in {lake.root} after the import of {data_dir}")
    first_ts, last_ts, perps = span
    first, last = first_ts.date(), last_ts.date()
    universe = settings.universe().symbols
    symbols = sorted((s for s in perps if s in universe), key=universe.index)
    out["range"] = f"{first}..{last}"
    out["symbols"] = symbols
    report = home / "bench_features.json"

    def checkpoint(key: str, value: object) -> None:  # a failure later keeps what was measured
        out[key] = value
        report.write_text(json.dumps(out, indent=2, default=str))

    checkpoint("embedding", _bench_embedding(lake, settings.embedding_cache))
    checkpoint("partitioned_build", _build(settings, first, last - timedelta(days=1), symbols, instance))
    checkpoint("peak_rss_mb_after_build", _rss_mb())
    checkpoint("one_pass_floor", _floor(lake, first, last))
    build_s = out["partitioned_build"]["wall_seconds"]
    out["ratio_partitioned_over_one_pass"] = round(build_s / out["one_pass_floor"]["seconds"], 1)
    checkpoint("incremental_day", _build(settings, last, last, symbols, instance))
    out["targets"] = {
        "ratio": "partitioned build <= 30x the one-pass floor",
        "incremental_day_seconds": "< 10",
        "warm_cache_speedup": ">= 50x",
    }
    return out


def _bench_embedding(lake: Lake, cache: Path) -> dict:
    """Cold and warm MiniLM embedding of every distinct social text of the lake."""
    from quantmm_assets.core.features.matrix import with_schema
    from quantmm_assets.core.text.scoring import text_items
    from quantmm_resources.text_encoder import TextEncoder

    posts = with_schema(_lake_frame(lake, "social_posts_raw"), "social_posts_raw")
    comments = with_schema(_lake_frame(lake, "social_comments_raw"), "social_comments_raw")
    # every text once: with the symbol links cleared, every item is market-wide and so relevant to any symbol
    items = text_items(
        posts.with_columns(pl.lit([], pl.List(pl.Utf8)).alias("symbols")),
        comments.with_columns(pl.lit([], pl.List(pl.Utf8)).alias("symbols")),
        "NONE",
    )
    items = items.unique(subset="content_hash", keep="first")
    texts, hashes = items["text"].to_list(), items["content_hash"].to_list()
    cold_path = cache.with_name("bench_cold.sqlite")
    cold_path.unlink(missing_ok=True)
    enc = TextEncoder(model="minilm", cache_path=str(cold_path))
    t0 = time.perf_counter()
    _, cold = enc.embed(texts, hashes)
    cold_s = time.perf_counter() - t0
    if cold.fallback:
        raise RuntimeError(f"bench: the sentence encoder fell back to {cold.encoder_id}: {cold.fallback_reason}")
    t0 = time.perf_counter()
    _, warm = enc.embed(texts, hashes)
    warm_s = time.perf_counter() - t0
    # the pipeline's own cache starts warm, so the build below measures features, not the encoder
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not cache.exists():
        cold_path.replace(cache)
    return {
        "encoder": cold.encoder_id,
        "fallback": cold.fallback,
        "texts": len(texts),
        "cold_seconds": round(cold_s, 2),
        "texts_per_second": round(len(texts) / cold_s, 1),
        "warm_seconds": round(warm_s, 3),
        "warm_cached": warm.cached,
        "warm_speedup": round(cold_s / max(warm_s, 1e-9), 1),
    }


def _build(settings: QuantmmSettings, first: date, last: date, symbols: list[str], instance) -> dict:
    """The feature layer over [first, last] through Dagster: three single-run backfills."""
    from quantmm_assets.core.text.features import TEXT_LOOKBACK_DAYS
    from quantmm_assets.defs.feature_assets import derivatives_features, macro_features, market_features
    from quantmm_assets.defs.matrix_assets import feature_matrix_main
    from quantmm_assets.defs.text_assets import text_bucket_features, text_items, text_latents

    resources = build_resources(settings)
    chain = [market_features, derivatives_features, text_bucket_features, text_latents, feature_matrix_main]
    t0 = time.perf_counter()
    runs = [
        run_range([macro_features], first, last, None, resources, instance, log_level="WARNING"),
        run_range(
            [text_items],
            max(first - timedelta(days=TEXT_LOOKBACK_DAYS), first_partition_day()),
            last,
            symbols,
            resources,
            instance,
            log_level="WARNING",
        ),
        run_range(chain, first, last, symbols, resources, instance, log_level="WARNING"),
    ]
    wall = time.perf_counter() - t0
    rows = sum(r.rows.get("feature_matrix_main", 0) for r in runs)
    return {
        "partitions": f"{first}..{last} x {len(symbols)} symbols",
        "success": all(r.success for r in runs),
        "wall_seconds": round(wall, 2),
        "matrix_rows": rows,
        "matrix_rows_per_second": round(rows / wall),
        "runs": {", ".join(r.assets): round(r.wall_seconds, 2) for r in runs},
        "where_the_time_goes": _breakdown(instance, runs),
        "checks": {k: v[:200] for r in runs for k, v in r.checks.items()},
    }


def _breakdown(instance, runs) -> dict:
    """Compute and check seconds per asset (from metadata); the rest of each run is Dagster and input loading."""
    import dagster as dg

    compute, checks = {}, {}
    for run in runs:
        recs = instance.get_records_for_run(
            run.run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
        ).records
        for rec in recs:
            ev = rec.event_log_entry.dagster_event
            if ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                m = ev.step_materialization_data.materialization
                if "compute_seconds" in m.metadata:
                    compute[m.asset_key.to_user_string()] = m.metadata["compute_seconds"].value
            else:
                data = ev.event_specific_data
                if "check_seconds" in data.metadata:
                    checks[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.metadata[
                        "check_seconds"
                    ].value
    total = sum(r.wall_seconds for r in runs)
    return {
        "compute_seconds": compute,
        "check_seconds": checks,
        "dagster_events_and_input_loading_seconds": round(total - sum(compute.values()) - sum(checks.values()), 2),
    }


def _floor(lake: Lake, first: date, last: date) -> dict:
    """One-pass pandas reference over the whole range, compared with the partitioned matrix."""
    from bench.reference_market import FEATURE_COLUMNS, reference_features

    compared = FEATURE_COLUMNS[3:]  # after symbol, ts_event, ts_available

    frames = {
        a: _lake_frame(lake, a).to_pandas()
        for a in ("market_bars_5m", "funding_rates", "open_interest", "derivatives_metrics")
    }
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ref = reference_features(
            frames["market_bars_5m"], frames["funding_rates"], frames["open_interest"], frames["derivatives_metrics"]
        )
        times.append(time.perf_counter() - t0)
    ref = pl.from_pandas(ref).with_columns(pl.col("ts_event").cast(pl.Datetime("us", "UTC")))
    matrix = _lake_frame(lake, "feature_matrix_main").select("symbol", "ts_event", *compared)
    joined = matrix.join(ref, on=["symbol", "ts_event"], how="inner", suffix="_ref")
    worst, bad_cols = 0.0, {}
    for col in compared:
        a = joined[col].cast(pl.Float64).to_numpy()
        b = joined[f"{col}_ref"].cast(pl.Float64).to_numpy()
        na, nb = np.isnan(a), np.isnan(b)
        with np.errstate(invalid="ignore"):
            rel = np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
        bad = (na != nb) | (~na & ~nb & (rel > 1e-9))
        if bad.any():
            bad_cols[col] = int(bad.sum())
        if (~na & ~nb).any():
            worst = max(worst, float(np.nanmax(np.where(na | nb, 0.0, rel))))
    return {
        "seconds": round(min(times), 3),
        "runs_seconds": [round(t, 3) for t in times],
        "perp_bars": len(ref),
        "rows_compared": len(joined),
        "matrix_rows": len(matrix),
        "columns_compared": len(compared),
        "max_relative_difference": worst,
        "columns_differing_beyond_1e-9": bad_cols,
        "equal_within_1e-9": not bad_cols and len(joined) == len(matrix),
    }
