from datetime import UTC, date, datetime

import dagster as dg

from quantmm_jobs.definitions import defs
from quantmm_jobs.schedules import RANGE_END, RANGE_START, refresh_window


def test_refresh_window_settles_yesterday_in_the_first_hour():
    assert refresh_window(datetime(2025, 3, 4, 0, 5, tzinfo=UTC)) == (date(2025, 3, 3), date(2025, 3, 4))
    assert refresh_window(datetime(2025, 3, 4, 1, 0, tzinfo=UTC)) == (date(2025, 3, 4), date(2025, 3, 4))


def evaluate(name: str, when: datetime, instance: dg.DagsterInstance | None = None) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def(name)
    with (
        dg.instance_for_test() as fresh,
        dg.build_schedule_context(scheduled_execution_time=when, instance=instance or fresh) as context,
    ):
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or [])


def test_market_refresh_is_one_range_run_over_every_symbol():
    (request,) = evaluate("refresh_today_market", datetime(2025, 3, 4, 12, 10, tzinfo=UTC))
    assert request.tags[RANGE_START] == "2025-03-04|BTCUSDT" and request.tags[RANGE_END] == "2025-03-04|AVAXUSDT"


def test_date_refresh_after_midnight_covers_yesterday_and_macro_settles_ten_days():
    (request,) = evaluate("refresh_today_social", datetime(2025, 3, 4, 0, 20, tzinfo=UTC))
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2025-03-03", "2025-03-04")
    (settle,) = evaluate("settle_macro_daily", datetime(2025, 3, 4, 23, 30, tzinfo=UTC))
    assert (settle.tags[RANGE_START], settle.tags[RANGE_END]) == ("2025-02-22", "2025-03-04")


def test_a_tick_is_skipped_while_the_previous_refresh_runs():
    with dg.instance_for_test() as instance:
        _skip_while_running(instance)


def _skip_while_running(instance: dg.DagsterInstance) -> None:
    job = defs.resolve_job_def("raw_market_job")
    run = instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.STARTED)
    assert evaluate("refresh_today_market", datetime(2025, 3, 4, 12, 10, tzinfo=UTC), instance) == []
    instance.report_run_canceled(run)
    assert len(evaluate("refresh_today_market", datetime(2025, 3, 4, 12, 20, tzinfo=UTC), instance)) == 1


def test_feature_refresh_follows_the_raw_refresh_and_labels_settle_nine_days():
    (features,) = evaluate("refresh_today_features", datetime(2025, 3, 4, 0, 15, tzinfo=UTC))
    assert (features.tags[RANGE_START], features.tags[RANGE_END]) == ("2025-03-03|BTCUSDT", "2025-03-04|AVAXUSDT")
    (macro,) = evaluate("refresh_today_macro_features", datetime(2025, 3, 4, 12, 15, tzinfo=UTC))
    assert (macro.tags[RANGE_START], macro.tags[RANGE_END]) == ("2025-03-04", "2025-03-04")
    (late,) = evaluate("settle_macro_features_daily", datetime(2025, 3, 4, 23, 45, tzinfo=UTC))
    assert late.tags[RANGE_START] == "2025-02-22"
    (labels,) = evaluate("settle_labels_daily", datetime(2025, 3, 4, 0, 20, tzinfo=UTC))
    assert (labels.tags[RANGE_START], labels.tags[RANGE_END]) == ("2025-02-23|BTCUSDT", "2025-03-04|AVAXUSDT")


def test_feature_job_selects_the_feature_chain_on_one_partitions_definition(quantmm_home):
    from quantmm_jobs.feature_schedules import FEATURE_ASSETS

    job = defs.resolve_job_def("features_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == set(FEATURE_ASSETS)
    assert job.partitions_def is not None and len(job.partitions_def.partitions_defs) == 2  # date x symbol


def test_the_daily_readiness_schedule_runs_the_audit_after_midnight():
    from quantmm_jobs.definitions import defs

    schedule = defs.get_schedule_def("daily_readiness")
    assert schedule.cron_schedule == "15 0 * * *" and schedule.execution_timezone == "UTC"
    job = defs.resolve_job_def("readiness_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"readiness_audit"}
