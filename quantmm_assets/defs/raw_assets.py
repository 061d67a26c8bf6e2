"""The seven raw assets. Thin: each names its source call; ``ingest_raw`` does the rest."""

from datetime import timedelta

import dagster as dg
import polars as pl

from quantmm_assets.defs.checks.raw_checks import raw_check_specs
from quantmm_assets.defs.partitions import daily, date_x_symbol
from quantmm_assets.defs.raw_ingest import ingest_raw
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource

COMMON = {"backfill_policy": dg.BackfillPolicy.single_run(), "io_manager_key": "lake_io_manager", "kinds": {"polars"}}
# Shown in the UI: the refresh schedules run every 10 minutes, macro settles daily.
INTRADAY = {
    **COMMON,
    "freshness_policy": dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=1), warn_window=timedelta(minutes=20)
    ),
}
DAILY = {**COMMON, "freshness_policy": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26))}


def _name(resource: dg.ConfigurableResource) -> str:
    return type(resource).__name__


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="raw_market",
    check_specs=raw_check_specs("market_bars_5m"),
    description="5m OHLCV bars of the spot market and the USDT-M perpetual (`market` column).",
    **INTRADAY,
)
def market_bars_5m(context: dg.AssetExecutionContext, exchange: ExchangeSource, opstore: OperationalStore):
    def fetch(sym, start, end):
        return pl.concat([exchange.fetch_bars(sym, m, start, end) for m in ("perp", "spot")], how="diagonal_relaxed")

    yield from ingest_raw(context, "market_bars_5m", fetch, opstore, _name(exchange))


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="raw_market",
    check_specs=raw_check_specs("funding_rates"),
    description="Perpetual funding settlements (rate per interval; ts_available = settlement).",
    **INTRADAY,
)
def funding_rates(context: dg.AssetExecutionContext, exchange: ExchangeSource, opstore: OperationalStore):
    yield from ingest_raw(context, "funding_rates", exchange.fetch_funding, opstore, _name(exchange))


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="raw_market",
    check_specs=raw_check_specs("open_interest"),
    description="Open interest snapshots (contracts and USD value) per period.",
    **INTRADAY,
)
def open_interest(context: dg.AssetExecutionContext, exchange: ExchangeSource, opstore: OperationalStore):
    yield from ingest_raw(context, "open_interest", exchange.fetch_open_interest, opstore, _name(exchange))


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="raw_market",
    check_specs=raw_check_specs("derivatives_metrics"),
    description="Long/short account and position ratios, taker buy/sell ratio, basis, mark price.",
    **INTRADAY,
)
def derivatives_metrics(context: dg.AssetExecutionContext, exchange: ExchangeSource, opstore: OperationalStore):
    yield from ingest_raw(context, "derivatives_metrics", exchange.fetch_derivatives_metrics, opstore, _name(exchange))


@dg.asset(
    partitions_def=daily,
    group_name="raw_macro",
    check_specs=raw_check_specs("macro_series"),
    description="Daily macro series (vix, us10y, dollar_index, ...) stamped with their publication time.",
    **DAILY,
)
def macro_series(context: dg.AssetExecutionContext, macro: MacroSource, opstore: OperationalStore):
    yield from ingest_raw(context, "macro_series", lambda _s, a, b: macro.fetch_macro(a, b), opstore, _name(macro))


@dg.asset(
    partitions_def=daily,
    group_name="raw_social",
    check_specs=raw_check_specs("social_posts_raw"),
    description="Social posts with the symbols they name (core.symbols.link_symbols).",
    **INTRADAY,
)
def social_posts_raw(context: dg.AssetExecutionContext, social: SocialSource, opstore: OperationalStore):
    yield from ingest_raw(
        context, "social_posts_raw", lambda _s, a, b: social.fetch_posts(a, b), opstore, _name(social)
    )


@dg.asset(
    partitions_def=daily,
    group_name="raw_social",
    check_specs=raw_check_specs("social_comments_raw"),
    description="Social comments with post/parent ids and linked symbols.",
    **INTRADAY,
)
def social_comments_raw(context: dg.AssetExecutionContext, social: SocialSource, opstore: OperationalStore):
    yield from ingest_raw(
        context, "social_comments_raw", lambda _s, a, b: social.fetch_comments(a, b), opstore, _name(social)
    )


RAW_MARKET_ASSETS = [market_bars_5m, funding_rates, open_interest, derivatives_metrics]
RAW_DATE_ASSETS = [macro_series, social_posts_raw, social_comments_raw]
RAW_ASSETS = RAW_MARKET_ASSETS + RAW_DATE_ASSETS
