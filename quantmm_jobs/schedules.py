"""Jobs and schedules over the raw assets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from quantmm_assets.defs.partitions import partition_symbols
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
social_refresh_job = dg.define_asset_job(
    "social_refresh_job",
    selection=dg.AssetSelection.assets("social_posts_raw", "social_comments_raw"),
    description="Social raw assets (today's are refreshed every 10 minutes; macro settles daily instead).",
)
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def busy(context: dg.ScheduleEvaluationContext, job_name: str) -> dg.SkipReason | None:
    """Skip a tick while the previous run of the job is still going (refreshes must not overlap)."""
    runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1)
    return dg.SkipReason(f"a {job_name} run ({runs[0].run_id[:8]}) is still in progress") if runs else None


def range_tags(start_key: str, end_key: str) -> dict[str, str]:
    """Run tags that make one run cover a partition range (a single-run backfill)."""
    return {RANGE_START: start_key, RANGE_END: end_key}


# Bars of the day's last minutes close after midnight: the first hour of a day refreshes yesterday too.
SETTLE_PREVIOUS_DAY = timedelta(hours=1)
# Macro observations are published up to a week late (DTWEXBGS weekly): re-read the last days once a day.
MACRO_SETTLE_DAYS = 10


def refresh_window(now: datetime) -> tuple[date, date]:
    """Days a refresh at ``now`` re-materializes: today, and yesterday during the first hour of the day."""
    now = now.astimezone(UTC)
    today = now.date()
    since_midnight = now - datetime(today.year, today.month, today.day, tzinfo=UTC)
    return (today - timedelta(days=1) if since_midnight < SETTLE_PREVIOUS_DAY else today), today


def today_market_request(now: datetime) -> dg.RunRequest:
    """One run over the refresh window's partitions of every symbol (one materialization per partition)."""
    first, last = refresh_window(now)
    symbols = partition_symbols()
    tags = range_tags(f"{first}|{symbols[0]}", f"{last}|{symbols[-1]}")
    return dg.RunRequest(tags=tags | {"quantmm/refresh": str(last)})


def today_date_request(now: datetime) -> dg.RunRequest:
    """One run over the refresh window's partitions of the (social) date assets."""
    first, last = refresh_window(now)
    return dg.RunRequest(tags=range_tags(str(first), str(last)) | {"quantmm/refresh": str(last)})


def macro_settle_request(now: datetime) -> dg.RunRequest:
    """Re-read the last days of macro series, whose values are published after the day they describe."""
    last = now.astimezone(UTC).date()
    first = last - timedelta(days=MACRO_SETTLE_DAYS)
    return dg.RunRequest(tags=range_tags(str(first), str(last)) | {"quantmm/settle": str(last)})


SCHEDULE_DOC = "Re-materialize today's partial partitions every 10 minutes (idempotent overwrite)."


def refresh_schedule(
    name: str, cron: str, job: dg.UnresolvedAssetJobDefinition, request, description: str
) -> dg.ScheduleDefinition:
    """A UTC schedule (stopped by default) that asks ``request(tick time)`` unless ``job`` is still running."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        return busy(context, job.name) or request(context.scheduled_execution_time or datetime.now(UTC))

    return _schedule


macro_settle_job = dg.define_asset_job(
    "macro_settle_job",
    selection=dg.AssetSelection.assets("macro_series"),
    description="macro_series over the last days, as late publications arrive.",
)
refresh_today_market = refresh_schedule(
    "refresh_today_market", "*/10 * * * *", raw_market_job, today_market_request, SCHEDULE_DOC
)
refresh_today_social = refresh_schedule(
    "refresh_today_social", "*/10 * * * *", social_refresh_job, today_date_request, SCHEDULE_DOC
)
settle_macro_daily = refresh_schedule(
    "settle_macro_daily",
    "30 23 * * *",
    macro_settle_job,
    macro_settle_request,
    f"Re-read the last {MACRO_SETTLE_DAYS} days of macro series daily (late publications).",
)


JOBS = [raw_market_job, raw_date_job, social_refresh_job, macro_settle_job]
SCHEDULES = [refresh_today_market, refresh_today_social, settle_macro_daily]
