"""`quantmm bundle import` on a small bundle with overlapping formats and an unparseable timestamp:
nothing is lost (lake rows + rejects == every row of every file) and the plan clips to real partitions."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS
from quantmm_jobs.cli.bundle_import import import_bundle, plan_import
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings


def write_bundle(path):
    path.mkdir()
    t0 = int(datetime(2025, 3, 4, 12, tzinfo=UTC).timestamp())
    scored = pl.DataFrame(
        {
            "submission_id": ["aa1", "aa2", "aa3"],
            "title": ["$BTC up", "ETH news", "SOL?"],
            "text": ["x", "", "z"],
            "url": ["u"] * 3,
            "author": ["a", "b", "c"],
            "score": [10, 3, 1],
            "num_comments": [2, 0, 0],
            "upvote_ratio": [0.9, 0.5, 0.7],
            "subreddit": ["CryptoCurrency"] * 3,
            "created_utc": [t0, t0 + 60, t0 + 120],
            "created_at_utc": ["2025-03-04 12:00:00"] * 3,
        }
    )
    scored.write_csv(path / "reddit_rcryptocurrency_posts_scored.csv")
    canonical = pl.DataFrame(
        {  # aa1 again (superseded by the scored file), one new post, one bad timestamp
            "platform": ["reddit"] * 3,
            "id": ["t3_aa1", "t3_bb1", "t3_bb2"],  # Reddit fullnames, as every source writes them
            "ts_event": ["2025-03-04T12:00:00Z", "2025-03-05T08:00:00Z", "not a time"],
            "text": ["$BTC up", "bitcoin", "lost?"],
        }
    )
    canonical.write_csv(path / "social_posts_raw.csv")
    bars = pl.DataFrame(
        {  # one BTC bar stamped in epoch seconds, one bar of a symbol outside the universe
            "symbol": ["BTCUSDT", "PEPEUSDT"],
            "market": ["perp", "perp"],
            "ts_event": [1741089600, 1741089600],
            "open": [1.0, 1.0],
            "high": [1.0, 1.0],
            "low": [1.0, 1.0],
            "close": [1.0, 1.0],
            "volume": [1.0, 1.0],
        }
    )
    bars.write_csv(path / "market_bars_5m.csv")
    return len(scored) + len(canonical), len(bars)


def test_import_accounts_for_every_bundle_row(quantmm_home, tmp_path, instance, capsys):
    bundle = tmp_path / "b"
    n_rows, n_bars = write_bundle(bundle)
    runs = import_bundle(bundle, instance=instance)
    assert [r.success for r in runs] == [True, True] and runs[1].partition_range == "2025-03-04...2025-03-05"
    con = connect_lake(quantmm_home / "lake")
    lake = con.execute("select count(*) from social_posts_raw").fetchone()[0]
    store = OperationalStore(url=get_settings().resolved_ops_url)
    bar_rejects = store.rejects("market_bars_5m")
    assert con.execute("select min(ts_event) from market_bars_5m").fetchone()[0].isoformat().startswith("2025-03-04")
    assert con.execute("select count(*) from market_bars_5m").fetchone()[0] + len(bar_rejects) == n_bars
    assert bar_rejects["reason"].to_list() == ["not imported: symbol PEPEUSDT not in the universe"]
    printed = capsys.readouterr().out
    assert "1  not imported: symbol PEPEUSDT not in the universe" in printed and "QUANTMM_UNIVERSE_FILE" in printed
    reasons = sorted(store.rejects("social_posts_raw")["reason"])
    assert lake == 4
    assert reasons == ["duplicate key: superseded by a preferred bundle format", "unparseable ts_event (bundle file)"]
    assert lake + len(reasons) == n_rows
    import_bundle(bundle, instance=instance)  # re-import: same lake, same rejects
    assert store.count_rejects("social_posts_raw") == 2


def test_plan_clips_to_existing_partitions_and_refuses_unknown_symbols():
    coverage = {"macro_series": {"symbols": ["vix"], "start": date(1970, 1, 2), "end": date(2031, 1, 1)}}
    assets, lo, hi, _ = plan_import(coverage, RAW_DATE_ASSETS, None, None, None)
    assert [a.key.to_user_string() for a in assets] == ["macro_series"]
    assert lo == date.fromisoformat(get_settings().partition_start) and hi == datetime.now(UTC).date()
    bars = {"market_bars_5m": {"symbols": ["BTCUSDT"], "start": date(2025, 1, 1), "end": date(2025, 1, 2)}}
    with pytest.raises(ValueError, match="not in the universe"):
        plan_import(bars, RAW_MARKET_ASSETS, None, None, ["PEPEUSDT"])


def write_bars(path, stamps: list[datetime]) -> None:
    """A bundle of BTCUSDT perp bars opening at ``stamps``."""
    path.mkdir()
    n = len(stamps)
    pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * n,
            "market": ["perp"] * n,
            "ts_event": [int(t.timestamp()) for t in stamps],
            **{c: [1.0] * n for c in ("open", "high", "low", "close", "volume")},
        }
    ).write_csv(path / "market_bars_5m.csv")


def first_partition() -> datetime:
    return datetime.fromisoformat(get_settings().partition_start).replace(tzinfo=UTC)


def test_bundle_before_the_first_partition_names_the_setting_that_covers_it(quantmm_home, tmp_path, instance):
    early = first_partition() - timedelta(days=200)
    write_bars(tmp_path / "b", [early, early + timedelta(minutes=5), early + timedelta(days=3)])
    with pytest.raises(ValueError) as err:
        import_bundle(tmp_path / "b", instance=instance)
    message = str(err.value)
    assert message.startswith(f"empty import window {first_partition().date()}..")
    assert f"QUANTMM_PARTITION_START={early.date()} would cover them" in message
    assert "all 3 rows of these assets lie outside the window" in message


def test_rows_before_the_first_partition_are_counted_and_named(quantmm_home, tmp_path, instance, capsys):
    start = first_partition()
    write_bars(
        tmp_path / "b", [start - timedelta(days=2), start - timedelta(minutes=5), start, start + timedelta(hours=1)]
    )
    (run,) = import_bundle(tmp_path / "b", instance=instance)
    assert run.success and run.rows == {"market_bars_5m": 2}
    printed = capsys.readouterr().out
    first = (start - timedelta(days=2)).date()
    assert (
        f"market_bars_5m: 2 bundle rows before {start.date()} not imported (first {first}); "
        f"QUANTMM_PARTITION_START={first} would cover them"
    ) in printed
