"""The pooled SQLite event-log storage: events written by one instance are read by another (as the webserver
reads what a CLI run wrote), and wiping or deleting a run's events leaves no stale engine behind."""

from datetime import date

import dagster as dg

from quantmm_assets.defs.raw_assets import funding_rates
from quantmm_jobs.cli.runs import instance_for, run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings


def test_events_are_shared_between_instances_and_deletable(quantmm_home):
    settings = get_settings()
    writer = instance_for(settings)
    assert type(writer.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
    run = run_range(
        [funding_rates],
        date(2025, 3, 4),
        date(2025, 3, 6),
        ["BTCUSDT"],
        build_resources(settings, "synthetic"),
        writer,
        log_level="WARNING",
    )
    assert run.success and run.partitions == 3
    reader = instance_for(settings)  # a second process would open the same files
    assert reader.get_materialized_partitions(dg.AssetKey("funding_rates")) == {
        "2025-03-04|BTCUSDT",
        "2025-03-05|BTCUSDT",
        "2025-03-06|BTCUSDT",
    }
    writer.delete_run(run.run_id)
    assert reader.get_run_by_id(run.run_id) is None
    assert not reader.get_records_for_run(run.run_id).records
    writer.wipe()
    assert not instance_for(settings).get_materialized_partitions(dg.AssetKey("funding_rates"))
