from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.settings import get_settings

UNIVERSE = get_settings().universe()

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=1)
MS = 1735689600000  # 2025-01-01 00:00 UTC in epoch ms


def bars(**over) -> pl.DataFrame:
    base = {
        "symbol": ["BTCUSDT"] * 3,
        "market": ["perp"] * 3,
        "ts_event": [MS, MS + 300_000, MS + 600_000],
        "open": ["100", "101", "102"],
        "high": ["102", "103", "104"],
        "low": ["99", "100", "101"],
        "close": ["101", "102", "103"],
        "volume": ["5", "6", "7"],
        "source": ["t"] * 3,
    }
    base.update(over)
    return pl.DataFrame(base)


def params(**kw) -> IngestParams:
    return IngestParams(start=START, end=END, symbols=("BTCUSDT",), universe=UNIVERSE, **kw)


def test_clean_bars_convert_and_stamp_bar_close():
    out = normalize("market_bars_5m", bars(), params())
    assert out.rejects.is_empty()
    assert out.clean.schema == pl.Schema(RAW_SCHEMAS["market_bars_5m"].columns)
    assert out.clean["ts_event"][0] == START
    assert (out.clean["ts_available"] - out.clean["ts_event"]).to_list() == [timedelta(minutes=5)] * 3
    assert out.clean["close"].to_list() == [101.0, 102.0, 103.0]


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"open": ["100", "abc", "102"]}, "unparseable open"),
        ({"close": ["101", None, "103"]}, "missing close"),
        ({"low": ["99", "104", "101"]}, "ohlc"),
        ({"volume": ["5", "-1", "7"]}, "ohlc"),
        ({"market": ["perp", "futures", "perp"]}, "unknown market"),
        ({"ts_event": [MS, MS + 301_000, MS + 600_000]}, "ts_event not on the 5m grid"),
        ({"ts_event": [MS, MS + 86_400_000, MS + 600_000]}, "outside requested window"),
        ({"symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"]}, "symbol not requested"),
        ({"ts_event": [MS, "yesterday", MS + 600_000]}, "unparseable ts_event"),
    ],
)
def test_bad_bar_rows_are_quarantined_with_reason(override, reason):
    if "ts_event" in override:  # a wire that sends timestamps as text: epoch-ms strings and one garbage value
        override = {"ts_event": [str(x) for x in override["ts_event"]]}
    frame = bars(**override)
    out = normalize("market_bars_5m", frame, params())
    assert len(out.clean) == 2 and len(out.rejects) == 1
    assert out.rejects["reason"][0].startswith(reason)
    assert out.rejects["partition"][0].startswith("2025-01-0")
    assert '"open"' in out.rejects["raw"][0]  # the original values are kept for inspection


def test_duplicates_keep_last_and_quarantine_the_rest():
    frame = pl.concat([bars(), bars(close=["101", "102.5", "103"])])
    out = normalize("market_bars_5m", frame, params())
    assert len(out.clean) == 3 and len(out.rejects) == 3
    assert set(out.rejects["reason"]) == {"duplicate key"}
    assert out.clean["close"].to_list() == [101.0, 102.5, 103.0]  # the later revision wins


def test_every_source_row_is_either_clean_or_rejected():
    frame = pl.concat([bars(), bars(open=["x", "1", "1"]), bars(low=["200", "1", "1"])])
    out = normalize("market_bars_5m", frame, params())
    assert len(out.clean) + len(out.rejects) == len(frame)


def test_missing_required_column_is_a_clear_error():
    with pytest.raises(ValueError, match="lacks required column"):
        normalize("market_bars_5m", bars().drop("close"), params())


def test_funding_rate_sanity_and_availability():
    src = pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * 3,
            "ts_event": [START, START + timedelta(hours=8), START + timedelta(hours=16)],
            "funding_rate": [0.0001, 0.5, None],
            "source": ["t"] * 3,
        }
    )
    out = normalize("funding_rates", src, params())
    assert out.reject_counts == {"funding": 1, "missing funding_rate": 1}
    assert out.clean["ts_available"].to_list() == out.clean["ts_event"].to_list()


def test_macro_dot_is_missing_not_unparseable_and_unknown_series_rejected():
    src = pl.DataFrame(
        {
            "series_id": ["us10y", "us10y", "gold"],
            "ts_event": ["2025-01-02", "2025-01-03", "2025-01-02"],
            "value": ["4.57", ".", "1"],
            "source_series": ["FRED:DGS10"] * 3,
            "source": ["t"] * 3,
        }
    )
    p = IngestParams(start=START, end=START + timedelta(days=5))
    out = normalize("macro_series", src, p)
    assert out.reject_counts == {"no observation (empty value)": 1, "unknown macro series": 1}
    # DGS10 for Thursday 2025-01-02 is published Friday 22:00 UTC.
    assert out.clean["ts_available"][0] == datetime(2025, 1, 3, 22, tzinfo=UTC)


def test_social_posts_link_symbols_and_reject_oversized_text():
    src = pl.DataFrame(
        {
            "platform": ["reddit"] * 3,
            "id": ["a", "b", "c"],
            "ts_event": [START + timedelta(hours=i) for i in range(3)],
            "title": ["$BTC breakout", None, None],
            "text": ["ethereum too", "x" * 50, "  "],
            "source": ["t"] * 3,
        }
    )
    out = normalize(
        "social_posts_raw",
        src,
        params(max_text_chars=20).__class__(start=START, end=END, universe=UNIVERSE, max_text_chars=20),
    )
    assert out.clean["symbols"].to_list() == [["BTCUSDT", "ETHUSDT"]]
    assert out.reject_counts == {"empty text": 1, "oversized text": 1}
    assert out.clean["ts_available"][0] - out.clean["ts_event"][0] == timedelta(minutes=10)  # the crawl cadence


def test_rows_of_partitions_the_run_did_not_ask_for_are_quarantined():
    two_days = IngestParams(
        start=START,
        end=START + timedelta(days=2),
        symbols=("BTCUSDT", "ETHUSDT"),
        partition_keys=frozenset({"2025-01-01|BTCUSDT", "2025-01-02|ETHUSDT"}),
        universe=UNIVERSE,
    )
    frame = bars(symbol=["BTCUSDT", "ETHUSDT", "BTCUSDT"])  # ETHUSDT on 2025-01-01 was not requested
    out = normalize("market_bars_5m", frame, two_days)
    assert out.reject_counts == {"outside requested window": 1}
    # filed under the run's first partition (a re-run of the same run replaces it), not under a key the
    # run does not own (that would delete another run's rejects)
    assert out.rejects["partition"].to_list() == ["2025-01-01|BTCUSDT"]


def test_rows_not_yet_available_at_ingest_are_not_final():
    out = normalize("market_bars_5m", bars(), params(now=START + timedelta(minutes=7)))
    assert len(out.clean) == 1 and out.reject_counts == {"not yet available at ingest": 2}


def test_rows_before_the_listing_date_are_quarantined():
    solana = IngestParams(
        start=datetime(2020, 9, 13, tzinfo=UTC),
        end=datetime(2020, 9, 15, tzinfo=UTC),
        symbols=("SOLUSDT",),
        universe=UNIVERSE,
    )  # SOLUSDT perp listed 2020-09-14
    ms = int(datetime(2020, 9, 13, 23, 55, tzinfo=UTC).timestamp() * 1000)
    frame = bars(symbol=["SOLUSDT"] * 3, ts_event=[ms, ms + 300_000, ms + 600_000])
    out = normalize("market_bars_5m", frame, solana)
    assert out.reject_counts == {"before listing date": 1} and len(out.clean) == 2
