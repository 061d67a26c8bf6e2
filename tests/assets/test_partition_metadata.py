"""One builder of per-partition metadata for raw, derived and macro assets: small runs and backfills."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from quantmm_assets.defs.partition_metadata import (
    PER_PARTITION_METADATA_MAX,
    days_not_over,
    partition_metadata,
    rows_by_partition,
)


class RecordingContext:
    """Records what an asset body reports per partition (the one context method the builder calls)."""

    def __init__(self) -> None:
        self.calls: dict[str, dict] = {}

    def add_asset_metadata(self, metadata: dict, partition_key: str) -> None:
        assert partition_key not in self.calls, f"{partition_key} reported twice"
        self.calls[partition_key] = metadata


def _keys(n: int, symbol: str | None = "BTCUSDT") -> list[str]:
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(n)]
    return [f"{d}|{symbol}" if symbol else str(d) for d in days]


def test_rows_by_partition_counts_each_key_and_an_empty_frame_has_none():
    frame = pl.DataFrame({"k": ["a", "b", "a"]})
    assert rows_by_partition(frame, pl.col("k")) == {"a": 2, "b": 1}
    assert rows_by_partition(frame.clear(), pl.col("k")) == {}


def test_a_day_is_over_only_once_it_and_its_settle_lag_have_passed():
    keys = ["2025-01-01|BTCUSDT", "2025-01-02"]
    now = datetime(2025, 1, 2, 0, 30, tzinfo=UTC)
    assert days_not_over(keys, now) == {"2025-01-02"}
    assert days_not_over(keys, now, settle_lag=timedelta(hours=1)) == set(keys)


def test_small_run_reports_on_each_partition_with_rejects_only_where_given():
    keys = _keys(3)
    ctx = RecordingContext()
    summary = partition_metadata(ctx, keys, {keys[0]: 5}, {keys[2]}, rejected={keys[1]: 2})
    assert summary == {"run_complete": False}
    assert ctx.calls == {
        keys[0]: {"rows": 5, "rejected_rows": 0, "complete": True},
        keys[1]: {"rows": 0, "rejected_rows": 2, "complete": True},
        keys[2]: {"rows": 0, "rejected_rows": 0, "complete": False},
    }
    derived = RecordingContext()
    assert partition_metadata(derived, keys, dict.fromkeys(keys, 1), set()) == {"run_complete": True}
    assert all(m == {"rows": 1, "complete": True} for m in derived.calls.values()) and len(derived.calls) == 3


def test_backfill_reports_run_level_lists_instead_of_each_partition():
    keys = _keys(PER_PARTITION_METADATA_MAX + 1, symbol=None)
    rows = dict.fromkeys(keys[1:], 1)
    ctx = RecordingContext()
    summary = partition_metadata(ctx, keys, rows, {keys[-1], "1999-01-01"}, rejected={keys[3]: 4})
    assert ctx.calls == {}
    assert summary["run_complete"] is False
    assert summary["incomplete_partitions"].value == [keys[-1]]  # only the run's own keys, in run order
    assert summary["empty_partitions"].value == [keys[0]]
    assert summary["partitions_with_rejects"].value == {keys[3]: 4}
    assert "partitions_with_rejects" not in partition_metadata(ctx, keys, rows, set())
