"""Jobs and schedules over the derived layer: today's features follow the raw refresh, labels settle daily."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from quantmm_assets.core.labels import LABEL_LOOKAHEAD_DAYS
from quantmm_assets.defs.partitions import partition_symbols
from quantmm_jobs.schedules import MACRO_SETTLE_DAYS, range_tags, refresh_schedule, refresh_window

FEATURE_ASSETS = (
    "text_items",
    "market_features",
    "derivatives_features",
    "text_bucket_features",
    "text_latents",
    "feature_matrix_main",
)
features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.assets(*FEATURE_ASSETS),
    description="The date x symbol feature assets up to feature_matrix_main (Dagster orders them).",
)
macro_features_job = dg.define_asset_job(
    "macro_features_job", selection=dg.AssetSelection.assets("macro_features"), description="macro_features (date)."
)
labels_job = dg.define_asset_job(
    "labels_job",
    selection=dg.AssetSelection.assets("labels_multi_horizon"),
    description="labels_multi_horizon: a day's labels complete once the 8 following days exist.",
)


def symbol_range_request(first, last, tag: str) -> dg.RunRequest:
    """One run over [first, last] x every symbol of the universe."""
    symbols = partition_symbols()
    return dg.RunRequest(tags=range_tags(f"{first}|{symbols[0]}", f"{last}|{symbols[-1]}") | {tag: str(last)})


def features_request(now: datetime) -> dg.RunRequest:
    """Today's feature partitions (and yesterday's in the first hour), every symbol."""
    first, last = refresh_window(now)
    return symbol_range_request(first, last, "quantmm/refresh")


def macro_features_request(now: datetime, days: int = 0) -> dg.RunRequest:
    """macro_features over the refresh window, or over the last ``days`` days (late publications)."""
    first, last = refresh_window(now)
    if days:
        first = last - timedelta(days=days)
    return dg.RunRequest(tags=range_tags(str(first), str(last)) | {"quantmm/refresh": str(last)})


def labels_request(now: datetime) -> dg.RunRequest:
    """The labels of the last days, which complete as their forward windows fill."""
    last = now.astimezone(UTC).date()
    return symbol_range_request(last - timedelta(days=LABEL_LOOKAHEAD_DAYS + 1), last, "quantmm/settle")


AFTER_RAW = "5-59/10 * * * *"  # five minutes after each raw refresh

refresh_today_macro_features = refresh_schedule(
    "refresh_today_macro_features",
    AFTER_RAW,
    macro_features_job,
    macro_features_request,
    "Today's macro_features (the 00:00 row the matrix reads, releases of the day) every 10 minutes.",
)
refresh_today_features = refresh_schedule(
    "refresh_today_features",
    AFTER_RAW,
    features_job,
    features_request,
    "Today's feature partitions of every symbol, five minutes after each raw refresh.",
)
settle_macro_features_daily = refresh_schedule(
    "settle_macro_features_daily",
    "45 23 * * *",
    macro_features_job,
    lambda now: macro_features_request(now, days=MACRO_SETTLE_DAYS),
    f"macro_features over the last {MACRO_SETTLE_DAYS} days after the daily macro settle (23:30).",
)
settle_labels_daily = refresh_schedule(
    "settle_labels_daily",
    "20 0 * * *",
    labels_job,
    labels_request,
    f"labels_multi_horizon over the last {LABEL_LOOKAHEAD_DAYS + 1} days: their 7d windows fill daily.",
)


FEATURE_JOBS = [features_job, macro_features_job, labels_job]
FEATURE_SCHEDULES = [
    refresh_today_macro_features,
    refresh_today_features,
    settle_macro_features_daily,
    settle_labels_daily,
]
