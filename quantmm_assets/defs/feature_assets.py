"""Feature-family assets: thin wrappers over core, each with a blocking as-of leakage check computed in its run
(sampled rows rebuilt from the inputs available at their t, availability recomputed from ts_event)."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from quantmm_assets.core.features import derivatives as fd
from quantmm_assets.core.features import macro as fmac
from quantmm_assets.core.features import market as fm
from quantmm_assets.core.features.matrix import raw_inputs, with_schema
from quantmm_assets.core.leakage.asof import asof_alignment, sample_rows
from quantmm_assets.defs.checks.leakage_results import ASOF, ASOF_SAMPLES, asof_spec, run_check
from quantmm_assets.defs.derived_window import (
    COMMON,
    derived_output,
    owned_rows,
    run_window,
    timed,
    window_in,
)
from quantmm_assets.defs.partition_metadata import days_not_over, partition_metadata, rows_by_partition
from quantmm_assets.defs.partitions import daily, date_x_symbol
from quantmm_resources.io_manager import PARTIAL_OK


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="features",
    ins={"market_bars_5m": window_in(fm.MARKET_LOOKBACK_DAYS)},
    check_specs=asof_spec("market_features"),
    description="Returns, realized / Parkinson / Garman-Klass volatility, ranges, volume z-scores, Amihud, "
    "Corwin-Schultz and Roll spreads on the perpetual's 5m grid (docs/features.md).",
    **COMMON,
)
def market_features(context: dg.AssetExecutionContext, market_bars_5m: pl.DataFrame):
    win = run_window(context)
    bars = with_schema(market_bars_5m, "market_bars_5m")
    out, secs = timed(lambda: owned_rows(fm.market_features(bars, win.start, win.end), win))
    yield derived_output(context, out, win, secs, {"input_bars": len(bars)})
    raw = raw_inputs(bars=bars)
    yield from run_check(
        "market_features",
        ASOF,
        lambda: asof_alignment(
            out, raw, lambda r, s, e: fm.market_features(r.bars, s, e), sample_rows(out, ASOF_SAMPLES), "market"
        ),
    )


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="features",
    ins={
        "market_bars_5m": window_in(fd.DERIVATIVES_LOOKBACK_DAYS["bars"]),
        "funding_rates": window_in(fd.DERIVATIVES_LOOKBACK_DAYS["funding"]),
        "open_interest": window_in(fd.DERIVATIVES_LOOKBACK_DAYS["open_interest"]),
        "derivatives_metrics": window_in(fd.DERIVATIVES_LOOKBACK_DAYS["derivatives_metrics"]),
    },
    check_specs=asof_spec("derivatives_features"),
    description="Funding level / change / z-score, OI changes, long-short and taker ratios, basis (reported, else "
    "perp vs spot), annualized basis, premium to mark; carried forward with staleness and missing flags.",
    **COMMON,
)
def derivatives_features(
    context: dg.AssetExecutionContext,
    market_bars_5m: pl.DataFrame,
    funding_rates: pl.DataFrame,
    open_interest: pl.DataFrame,
    derivatives_metrics: pl.DataFrame,
):
    win = run_window(context)
    raw = raw_inputs(
        bars=with_schema(market_bars_5m, "market_bars_5m"),
        funding=with_schema(funding_rates, "funding_rates"),
        open_interest=with_schema(open_interest, "open_interest"),
        metrics=with_schema(derivatives_metrics, "derivatives_metrics"),
    )

    def build(r, s, e):
        return fd.derivatives_features(r.bars, r.funding, r.open_interest, r.metrics, s, e)

    out, secs = timed(lambda: owned_rows(build(raw, win.start, win.end), win))
    yield derived_output(context, out, win, secs)
    yield from run_check(
        "derivatives_features", ASOF, lambda: asof_alignment(out, raw, build, sample_rows(out, ASOF_SAMPLES), "deriv")
    )


@dg.asset(
    partitions_def=daily,
    group_name="features",
    ins={
        "macro_series": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-fmac.MACRO_LOOKBACK_DAYS, allow_nonexistent_upstream_partitions=True
            ),
            metadata={PARTIAL_OK: True},
        )
    },
    check_specs=asof_spec("macro_features"),
    description="Macro state (value, change, 90-day z-score, release time) at each day's start and each release "
    "instant; the same for every symbol, so partitioned by date only and read by each symbol's matrix row.",
    **COMMON,
)
def macro_features(context: dg.AssetExecutionContext, macro_series: pl.DataFrame):
    days = sorted(context.partition_keys)
    win_start, win_end = context.partition_time_window
    macro = with_schema(macro_series, "macro_series")
    out, secs = timed(lambda: fmac.macro_features(macro, win_start, win_end))
    context.log.info(f"macro_features: {len(out)} rows over {len(days)} day(s)")
    day_key = pl.col("ts_event").dt.strftime("%Y-%m-%d")
    yield dg.Output(
        out,
        metadata={
            "run_rows": len(out),
            "run_partitions": len(days),
            "date_range": f"{days[0]}..{days[-1]}",
            "compute_seconds": round(secs, 3),
            "input_rows": len(macro),
            **partition_metadata(
                context, days, rows_by_partition(out, day_key), days_not_over(days, datetime.now(UTC))
            ),
        },
    )
    raw = raw_inputs(macro=macro)
    samples = (
        [("", t) for t in out["ts_event"].sample(min(ASOF_SAMPLES, len(out)), seed=0).to_list()] if len(out) else []
    )

    def build(r, s, e):
        return fmac.macro_features(r.macro, s, e).with_columns(pl.lit("").alias("symbol"))

    stored = out.with_columns(pl.lit("").alias("symbol"))
    yield from run_check("macro_features", ASOF, lambda: asof_alignment(stored, raw, build, samples, "macro"))


FAMILY_ASSETS = [market_features, derivatives_features, macro_features]
