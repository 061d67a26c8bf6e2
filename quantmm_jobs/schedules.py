"""Jobs and schedules over the raw assets."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from quantmm_assets.defs.partitions import UNIVERSE
from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

raw_market_job = dg.define_asset_job(
    "raw_market_job",
    selection=dg.AssetSelection.assets(*RAW_MARKET_ASSETS),
    description="Market and derivatives raw assets (date x symbol).",
)
raw_date_job = dg.define_asset_job(
    "raw_date_job",
    selection=dg.AssetSelection.assets(*RAW_DATE_ASSETS),
    description="Macro and social raw assets (date).",
)


def range_tags(start_key: str, end_key: str) -> dict[str, str]:
    """Run tags that make one run cover a partition range (a single-run backfill)."""
    return {RANGE_START: start_key, RANGE_END: end_key}


def today_market_request(now: datetime) -> dg.RunRequest:
    """One run over today's partitions of every symbol (a range run: one materialization per partition)."""
    day = now.astimezone(UTC).date().isoformat()
    symbols = UNIVERSE.symbols
    return dg.RunRequest(tags=range_tags(f"{day}|{symbols[0]}", f"{day}|{symbols[-1]}") | {"quantmm/refresh": day})


def today_date_request(now: datetime) -> dg.RunRequest:
    day = now.astimezone(UTC).date().isoformat()
    return dg.RunRequest(partition_key=day, tags={"quantmm/refresh": day})


SCHEDULE_DOC = "Re-materialize today's partial partitions every 10 minutes (idempotent overwrite)."


@dg.schedule(
    cron_schedule="*/10 * * * *",
    job=raw_market_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=SCHEDULE_DOC,
)
def refresh_today_market(context: dg.ScheduleEvaluationContext):
    return today_market_request(context.scheduled_execution_time or datetime.now(UTC))


@dg.schedule(
    cron_schedule="*/10 * * * *",
    job=raw_date_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=SCHEDULE_DOC,
)
def refresh_today_date(context: dg.ScheduleEvaluationContext):
    return today_date_request(context.scheduled_execution_time or datetime.now(UTC))


SCHEDULES = [refresh_today_market, refresh_today_date]
