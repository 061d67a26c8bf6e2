from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from quantmm_resources.io_manager import LakeWrite, PolarsParquetIOManager
from quantmm_resources.lake import Lake
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.opstore import OperationalStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def frame(days: int, symbols=("BTCUSDT", "ETHUSDT")) -> pl.DataFrame:
    rows = [
        {"symbol": s, "ts_event": T0 + timedelta(days=d, hours=h), "v": float(d * 10 + h)}
        for s in symbols
        for d in range(days)
        for h in (0, 12)
    ]
    return pl.DataFrame(rows)


def test_range_output_is_split_one_file_per_partition_and_read_back(tmp_path):
    io = PolarsParquetIOManager(base_dir=str(tmp_path))
    keys = [f"2025-01-0{d}|{s}" for d in (1, 2, 3) for s in ("BTCUSDT", "ETHUSDT")]
    data = frame(2)  # day 3 has no rows: its partitions are written empty
    io.handle_output(_ctx(keys), data)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert len(files) == 6 and "x/date=2025-01-03/symbol=ETHUSDT/data.parquet" in files
    assert pl.read_parquet(Lake(tmp_path).partition_file("x", "2025-01-03|ETHUSDT")).is_empty()
    con = connect_lake(tmp_path)
    assert con.execute("select count(*) from x").fetchone()[0] == len(data)


def test_rows_outside_the_run_are_an_error(tmp_path):
    io = PolarsParquetIOManager(base_dir=str(tmp_path))
    with pytest.raises(ValueError, match="outside this run"):
        io.handle_output(_ctx(["2025-01-01|BTCUSDT"]), frame(1))


def _ctx(keys):
    class Ctx:  # the subset of OutputContext the IO manager reads
        asset_key = dg.AssetKey("x")
        has_asset_partitions = True
        asset_partition_keys = keys

        def add_output_metadata(self, md):
            self.md = md

        class log:
            warning = staticmethod(lambda msg: None)

    return Ctx()


def test_only_partitions_named_to_keep_keep_their_earlier_data(tmp_path):
    io = PolarsParquetIOManager(base_dir=str(tmp_path))
    keys = ["2025-01-01|BTCUSDT", "2025-01-01|ETHUSDT"]
    io.handle_output(_ctx(keys), frame(1))
    path = Lake(tmp_path).partition_file("x", "2025-01-01|ETHUSDT")
    ctx = _ctx(keys)
    only_btc = frame(1, symbols=("BTCUSDT",))
    io.handle_output(ctx, LakeWrite(only_btc, keep_existing=frozenset({"2025-01-01|ETHUSDT"})))  # source: no ETH
    assert len(pl.read_parquet(path)) == 2 and ctx.md["partitions_kept_unchanged"] == 1
    io.handle_output(_ctx(keys), only_btc)  # not named: every ETH row was rejected, the partition is emptied
    assert pl.read_parquet(path).is_empty()
    newer = frame(1).with_columns(v=pl.lit(-1.0))
    io.handle_output(_ctx(keys), newer)  # rows again: replaced, not merged
    assert pl.read_parquet(path)["v"].to_list() == [-1.0, -1.0]


def test_opstore_replaces_rejects_idempotently(tmp_path):
    store = OperationalStore(url=f"sqlite:///{tmp_path / 'ops.db'}")
    rej = pl.DataFrame(
        {"asset": ["a"] * 2, "partition": ["2025-01-01|BTCUSDT"] * 2, "reason": ["x", "y"], "raw": ["{}", "{}"]}
    )
    for _ in range(3):
        store.replace_rejects("a", ["2025-01-01|BTCUSDT"], rej, run_id="r")
    assert store.count_rejects("a") == 2
    store.replace_rejects("a", ["2025-01-01|BTCUSDT"], rej.clear())
    assert store.count_rejects("a") == 0
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_only_missing_partitions_at_the_edges_of_a_look_back_read_as_no_rows():
    from quantmm_resources.io_manager import interior_gaps

    keys = [f"2025-03-0{d}|BTCUSDT" for d in range(1, 7)] + [f"2025-03-0{d}|ETHUSDT" for d in range(1, 7)]
    present = {f"2025-03-0{d}|BTCUSDT" for d in (3, 4, 6)} | {f"2025-03-0{d}|ETHUSDT" for d in (1, 2, 3)}
    # BTC: 1-2 before its data begins (fine), 5 is a hole; ETH: 4-6 after its data ends (fine)
    assert interior_gaps(keys, present) == ["2025-03-05|BTCUSDT"]
    assert interior_gaps(keys, set()) == []
