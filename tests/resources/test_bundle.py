"""The offline bundle: discovery by file name, every format, windows, nulls, coverage, the real files."""

from __future__ import annotations

import gzip
import io
import json
import logging
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from quantmm_assets.core.schemas import DERIVATIVES_METRICS, RAW_SCHEMAS
from quantmm_resources.sources.bundle import (
    BundleExchange,
    BundleMacro,
    BundleSocial,
    bundle_coverage,
    inventory,
    set_aside_rows,
    unserved_rows,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _feather(path: Path, n: int, step: timedelta, **cols: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dates = [T0 + i * step for i in range(n)]
    base = {c: [float(i) for i in range(n)] for c in ("open", "high", "low", "close", "volume")}
    frame = pl.DataFrame({"date": pl.Series(dates).dt.cast_time_unit("ns"), **base, **cols})
    frame.write_ipc(path)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture()
def freqtrade(tmp_path: Path) -> Path:
    _feather(tmp_path / "x/spot/BTC_USDT-5m.feather", 12, timedelta(minutes=5))
    _feather(tmp_path / "x/futures/BTC_USDT_USDT-5m-futures.feather", 10, timedelta(minutes=5))
    _feather(
        tmp_path / "futures/BTC_USDT_USDT-1h-funding_rate.feather",
        4,
        timedelta(hours=8),
        open=[1e-4, -2e-4, 3e-4, 0.0],
        close=[0.0] * 4,
    )
    _feather(tmp_path / "BTC_USDT_USDT-1h-mark.feather", 5, timedelta(hours=1), close=[10.0, 11, 12, 13, 14])
    _write(tmp_path / "notes.csv", "a,b\n1,2\n")  # unrecognised: ignored
    return tmp_path


def test_freqtrade_files_anywhere_in_the_tree(freqtrade: Path) -> None:
    ex = BundleExchange(path=str(freqtrade))
    spot = ex.fetch_bars("BTCUSDT", "spot", *FAR)
    perp = ex.fetch_bars("btcusdt", "perp", *FAR)
    assert (spot.height, perp.height) == (12, 10)
    assert spot.columns == RAW_SCHEMAS["market_bars_5m"].source_columns
    assert set(spot["market"]) == {"spot"} and set(perp["market"]) == {"perp"}
    assert set(perp["source"]) == {"bundle:freqtrade"} and set(perp["symbol"]) == {"BTCUSDT"}
    assert spot["quote_volume"].null_count() == 12 and spot["trades"].null_count() == 12
    assert spot["ts_event"].dtype == pl.Datetime("us", "UTC") and spot["ts_event"][0] == T0

    funding = ex.fetch_funding("BTCUSDT", *FAR)
    assert funding["funding_rate"].to_list() == [1e-4, -2e-4, 3e-4, 0.0]
    assert funding["mark_price"].null_count() == 4
    assert funding["ts_event"][1] == T0 + timedelta(hours=8)

    dm = ex.fetch_derivatives_metrics("BTCUSDT", *FAR)
    assert dm["mark_price"].to_list() == [10.0, 11, 12, 13, 14] and set(dm["period"]) == {"1h"}
    ratios = [c for c in DERIVATIVES_METRICS.value_columns if c != "mark_price"]
    assert all(dm[c].null_count() == 5 for c in ratios)
    assert ex.fetch_open_interest("BTCUSDT", *FAR).is_empty()
    assert ex.available_kinds() == {"market_bars_5m", "funding_rates", "derivatives_metrics"}
    assert inventory(freqtrade).ignored == ("notes.csv",)


def test_window_is_half_open_and_empty_window_has_columns(freqtrade: Path) -> None:
    ex = BundleExchange(path=str(freqtrade))
    got = ex.fetch_bars("BTCUSDT", "spot", T0 + timedelta(minutes=5), T0 + timedelta(minutes=15))
    assert got["ts_event"].to_list() == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    naive = ex.fetch_bars("BTCUSDT", "spot", datetime(2025, 1, 1, 0, 50), datetime(2025, 1, 2))
    assert naive.height == 2  # naive datetimes are taken as UTC
    empty = ex.fetch_bars("ETHUSDT", "spot", *FAR)
    assert empty.is_empty() and empty.columns == RAW_SCHEMAS["market_bars_5m"].source_columns


def test_new_file_is_discovered_without_restart(freqtrade: Path) -> None:
    ex = BundleExchange(path=str(freqtrade))
    assert ex.fetch_bars("ETHUSDT", "spot", *FAR).is_empty()
    _feather(freqtrade / "x/spot/ETH_USDT-5m.feather", 3, timedelta(minutes=5))
    assert ex.fetch_bars("ETHUSDT", "spot", *FAR).height == 3


def test_macro_fred_and_single_series_keep_blank_rows(tmp_path: Path) -> None:
    _write(tmp_path / "m/FRED_x.csv", "date,DGS10,VIXCLS,DTWEXBGS\n2025-01-02,4.5,,120.1\n2025-01-03,4.6,17.0,\n")
    _write(tmp_path / "m/DXY_ICE_daily.csv.gz", "date,open,close,volume\n2025-01-01,,,0\n2025-01-02,108.1,108.5,0\n")
    _write(
        tmp_path / "VIX_daily.csv.gz", "date,open,high,low,close\n2025-01-02,17,18,16,17.5\n2025-01-03,17,18,16,17.1\n"
    )
    _write(tmp_path / "US10Y_TNX_daily.csv", "date,open,close,volume\n2025-01-02,4.5,4.55,0\n")
    _write(tmp_path / "macro_series_extra.csv", "series_id,date,value,source_series\nvix,2025-01-06,20.5,FRED:VIXCLS\n")
    macro = BundleMacro(path=str(tmp_path))
    got = macro.fetch_macro(*FAR)
    assert got.columns == RAW_SCHEMAS["macro_series"].source_columns
    # FRED 6 + DXY 2 + TNX 1 + canonical 1 + VIX 2, less one copy of each of the two vix days both files carry
    assert got.height == 6 + 2 + 1 + 1 + 2 - 2
    by = {(r["series_id"], r["ts_event"].date().isoformat()): r for r in got.iter_rows(named=True)}
    assert by[("us10y", "2025-01-02")]["value"] == 4.5
    assert by[("us10y", "2025-01-02")]["source_series"] == "FRED:DGS10"
    assert by[("dollar_index", "2025-01-03")]["value"] is None  # blank FRED value kept as a null row
    assert by[("dxy_ice", "2025-01-01")]["value"] is None and by[("dxy_ice", "2025-01-02")]["value"] == 108.5
    # VIX_ files are the CBOE close of series vix (FRED VIXCLS redistributes it): FRED wins a shared day,
    # except over a blank FRED value
    assert (by[("vix", "2025-01-03")]["value"], by[("vix", "2025-01-03")]["source_series"]) == (17.0, "FRED:VIXCLS")
    assert (by[("vix", "2025-01-02")]["value"], by[("vix", "2025-01-02")]["source_series"]) == (17.5, "CBOE:VIX")
    assert by[("vix", "2025-01-02")]["source"] == "bundle:macro_close_csv"
    aside = set_aside_rows(tmp_path, "macro_series")
    assert aside["reason"].to_list() == ["duplicate key: superseded by a preferred bundle format"] * 2
    assert sorted(json.loads(r)["source_series"] + "@" + json.loads(r)["ts_event"][:10] for r in aside["raw"]) == [
        "CBOE:VIX@2025-01-03",
        "FRED:VIXCLS@2025-01-02",
    ]
    assert by[("tnx_cboe", "2025-01-02")]["value"] == 4.55
    assert by[("vix", "2025-01-06")]["source"] == "bundle:canonical"
    assert by[("dxy_ice", "2025-01-02")]["ts_event"] == datetime(2025, 1, 2, tzinfo=UTC)
    window = macro.fetch_macro(datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC))
    assert sorted(window["series_id"]) == ["dollar_index", "dxy_ice", "tnx_cboe", "us10y", "vix"]
    assert macro.available_kinds() == {"macro_series"}
    assert BundleExchange(path=str(tmp_path)).available_kinds() == set()


def test_open_interest_wide_csv(tmp_path: Path) -> None:
    _write(
        tmp_path / "open_interest/binance_um_oi_daily_BTC_ETH.csv",
        "date,BTCUSDT_oi_value_usd,ETHUSDT_oi_value_usd\n2025-11-08,8.9e9,5.9e9\n2025-11-09,8.6e9,\n",
    )
    ex = BundleExchange(path=str(tmp_path))
    btc = ex.fetch_open_interest("BTCUSDT", *FAR)
    assert btc["open_interest_value"].to_list() == [8.9e9, 8.6e9]
    assert btc["open_interest"].null_count() == 2 and set(btc["period"]) == {"1d"}
    eth = ex.fetch_open_interest("ETHUSDT", *FAR)
    assert eth.height == 2 and eth["open_interest_value"][1] is None  # blank kept as null
    assert ex.available_kinds() == {"open_interest"}


TEXT_HEADER = "unified_id,text_content,created_date_local_as_published,author,source_type,subreddit"


def test_reddit_text_csv_utc_plus_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        "p_abc,Post one,2025-10-01 10:00:00,alice,post,bitcoin",
        'c_def,"A comment, with comma",2025-10-01 10:30:00,bob,comment,bitcoin',
    ]
    _write(tmp_path / "a/reddit_crypto_posts_comments_text.csv.gz", "\n".join([TEXT_HEADER, *rows]) + "\n")
    # same kind of file with the inferred column present, one row disagreeing with local - 1h
    inferred = [
        r + "," + ts
        for r, ts in zip(
            ["p_ghi,Post two,2025-10-02 01:00:00,carol,post,solana", "c_jkl,C2,2025-10-02 02:00:00,dan,comment,solana"],
            ["2025-10-02 00:00:00+00:00", "2025-10-02 05:00:00+00:00"],
            strict=True,
        )
    ]
    _write(tmp_path / "b/reddit_text_part2.csv", "\n".join([TEXT_HEADER + ",created_at_utc_inferred", *inferred]))
    social = BundleSocial(path=str(tmp_path))
    with caplog.at_level(logging.WARNING):
        posts = social.fetch_posts(*FAR)
        comments = social.fetch_comments(*FAR)
    assert "1 rows where created_at_utc_inferred != local - 1h" in caplog.text
    assert posts.columns == RAW_SCHEMAS["social_posts_raw"].source_columns
    assert posts["id"].to_list() == ["t3_abc", "t3_ghi"]  # p_<id> -> Reddit fullname t3_<id>
    assert posts["ts_event"].to_list() == [datetime(2025, 10, 1, 9, tzinfo=UTC), datetime(2025, 10, 2, 0, tzinfo=UTC)]
    assert set(posts["platform"]) == {"reddit"} and set(posts["source"]) == {"bundle:reddit_text_csv"}
    assert posts["engagement_score"].null_count() == 2 and posts["num_comments"].null_count() == 2
    assert posts["engagement_observed_at"].null_count() == 2 and comments["engagement_observed_at"].null_count() == 2
    assert comments["id"].to_list() == ["t1_def", "t1_jkl"]  # c_<id> -> t1_<id>
    assert comments["text"][0] == "A comment, with comma"
    assert comments["ts_event"][0] == datetime(2025, 10, 1, 9, 30, tzinfo=UTC)
    assert comments["ts_event"][1] == datetime(2025, 10, 2, 5, tzinfo=UTC)  # inferred column kept
    assert comments["post_id"].null_count() == 2 and comments["parent_id"].null_count() == 2
    assert comments["community"].to_list() == ["bitcoin", "solana"]


def _scored(tmp_path: Path) -> None:
    _write(
        tmp_path / "reddit_rcryptocurrency_posts_scored.csv.gz",
        "submission_id,title,text,url,author,score,num_comments,upvote_ratio,subreddit,created_utc\n"
        "1oatxz8,BTC up,,https://x.y,al,153.0,10.0,0.9,CryptoCurrency,1760891120.0\n"
        '1oaviwo,Buy?,"body\nline 2",,bo,0.0,,0.3,CryptoCurrency,1760894851.0\n',
    )
    _write(
        tmp_path / "reddit_rcryptocurrency_comments_scored.csv.gz",
        "comment_id,submission_id,author,body,score,parent_id,created_utc,subreddit\n"
        "nkbvf8u,1oatxz8,cc,hello,3.0,t3_1oatxz8,1760891178.0,CryptoCurrency\n"
        "nkbvf9a,1oatxz8,dd,reply,,t1_nkbvf8u,1760891200.0,CryptoCurrency\n"
        "nkbvg00,1oatxz8,ee,plain ids,1.0,1oatxz8,1760891300.0,CryptoCurrency\n"
        "nkbvg01,t3_1oatxz8,ff,plain parent,,nkbvf8u,1760891400.0,CryptoCurrency\n",
    )


def test_reddit_scored_files_ids_and_engagement(tmp_path: Path) -> None:
    _scored(tmp_path)
    social = BundleSocial(path=str(tmp_path))
    posts, comments = social.fetch_posts(*FAR), social.fetch_comments(*FAR)
    assert posts["id"].to_list() == ["t3_1oatxz8", "t3_1oaviwo"]  # Reddit fullnames, as the live client
    assert posts["engagement_score"].to_list() == [153, 0] and posts["engagement_score"].dtype == pl.Int64
    assert posts["num_comments"].to_list() == [10, None]
    assert posts["text"].to_list() == ["BTC up", "Buy?\n\nbody\nline 2"]
    assert posts["ts_event"][0] == datetime.fromtimestamp(1760891120, UTC)
    # the scores were taken at a scrape time the files do not record: unknown, never guessed
    assert posts["engagement_observed_at"].null_count() == 2 and comments["engagement_observed_at"].null_count() == 4
    assert comments["id"].to_list() == ["t1_nkbvf8u", "t1_nkbvf9a", "t1_nkbvg00", "t1_nkbvg01"]
    assert comments["post_id"].to_list() == ["t3_1oatxz8"] * 4
    # parent_id as given when prefixed; a plain id is the post when it equals submission_id, else a comment
    assert comments["parent_id"].to_list() == ["t3_1oatxz8", "t1_nkbvf8u", "t3_1oatxz8", "t1_nkbvf8u"]
    assert comments["engagement_score"].to_list() == [3, None, 1, None]
    assert set(comments["source"]) == {"bundle:reddit_scored_csv"}


def test_same_item_in_two_files_keeps_the_scored_copy(tmp_path: Path) -> None:
    _scored(tmp_path)
    _write(
        tmp_path / "t.csv",
        TEXT_HEADER + "\np_1oatxz8,BTC up,2025-10-19 17:25:20,al,post,cryptocurrency\n"
        "p_other,Other,2025-10-19 18:00:00,zz,post,cryptocurrency\n",
    )
    posts = BundleSocial(path=str(tmp_path)).fetch_posts(*FAR)
    assert sorted(posts["id"]) == ["t3_1oatxz8", "t3_1oaviwo", "t3_other"]  # one id convention in both files
    assert posts.filter(pl.col("id") == "t3_1oatxz8")["source"].to_list() == ["bundle:reddit_scored_csv"]


def test_canonical_social_and_bad_values_are_kept(tmp_path: Path) -> None:
    post = {
        "platform": "rss",
        "id": "n1",
        "ts_event": "2025-01-01T10:00:00Z",
        "author": None,
        "community": "feed",
        "title": "T",
        "text": "x",
        "url": None,
        "engagement_score": None,
    }
    _write(tmp_path / "feeds_posts.jsonl", json.dumps(post) + "\n")
    _write(tmp_path / "feeds_comments.csv.gz", "platform,id,post_id,ts_event,text\nrss,k1,n1,1735725600000,hi\n")
    _write(
        tmp_path / "market_bars_5m_extra.csv",
        "symbol,market,ts_event,open,high,low,close,volume\nSOLUSDT,perp,2025-01-01 00:00:00,1,2,0.5,abc,3\n",
    )
    posts = BundleSocial(path=str(tmp_path)).fetch_posts(*FAR)
    assert posts.row(0, named=True)["author"] is None and posts["num_comments"].null_count() == 1
    assert posts["source"].to_list() == ["bundle:canonical"]
    comments = BundleSocial(path=str(tmp_path)).fetch_comments(*FAR)
    assert comments["ts_event"].to_list() == [datetime(2025, 1, 1, 10, tzinfo=UTC)]  # epoch ms
    bars = BundleExchange(path=str(tmp_path)).fetch_bars("SOLUSDT", "perp", *FAR)
    assert bars.height == 1 and bars["close"].to_list() == ["abc"]  # unparsable: kept as text for core
    assert bars["open"].dtype == pl.Float64


def test_canonical_epoch_seconds_ms_and_us_are_told_apart(tmp_path: Path) -> None:
    stamp = datetime(2025, 3, 4, 12, tzinfo=UTC)  # 1741089600 s
    secs = int(stamp.timestamp())
    _write(
        tmp_path / "funding_rates_epochs.csv",
        "symbol,ts_event,funding_rate\n"
        f"BTCUSDT,{secs},0.0001\n"  # epoch seconds: not read as milliseconds (1970-01-21)
        f"BTCUSDT,{secs * 1000 + 8 * 3600_000},0.0002\n"  # epoch milliseconds
        f"BTCUSDT,{secs * 1_000_000 + 16 * 3600_000_000},0.0003\n"  # epoch microseconds
        "BTCUSDT,2025-03-05T00:00:00+00:00,0.0004\n",  # ISO with an offset
    )
    got = BundleExchange(path=str(tmp_path)).fetch_funding("BTCUSDT", *FAR)
    assert got["ts_event"].to_list() == [stamp + timedelta(hours=h) for h in (0, 8, 12, 16)]  # sorted
    _write(tmp_path / "j/macro_series_epochs.jsonl", json.dumps({"series_id": "vix", "ts_event": secs, "value": 1}))
    assert BundleMacro(path=str(tmp_path)).fetch_macro(*FAR)["ts_event"].to_list() == [stamp]  # JSON number


def test_canonical_social_engagement_observed_at_passes_through(tmp_path: Path) -> None:
    rows = [
        {
            "platform": "reddit",
            "id": "t3_a",
            "ts_event": "2025-01-01T10:00:00Z",
            "text": "x",
            "engagement_score": 5,
            "engagement_observed_at": "2025-01-02T08:00:00.000000Z",
        },
        {
            "platform": "reddit",
            "id": "t3_b",
            "ts_event": "2025-01-01T11:00:00Z",
            "text": "y",
            "engagement_observed_at": None,
        },
    ]
    _write(tmp_path / "social_posts_raw-2025-01.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write(
        tmp_path / "social_comments_raw-2025-01.csv",
        "platform,id,post_id,ts_event,text,engagement_observed_at\n"
        "reddit,t1_c,t3_a,2025-01-01 10:30:00,hi,1735808400\n"  # epoch seconds
        "reddit,t1_d,t3_a,2025-01-01 10:40:00,yo,not a time\n",  # kept as text: core rejects the row
    )
    social = BundleSocial(path=str(tmp_path))
    posts, comments = social.fetch_posts(*FAR), social.fetch_comments(*FAR)
    assert posts["engagement_observed_at"].to_list() == [datetime(2025, 1, 2, 8, tzinfo=UTC), None]
    assert posts.schema["engagement_observed_at"] == pl.Datetime("us", "UTC")
    assert comments["engagement_observed_at"].to_list() == ["1735808400", "not a time"]


def test_unserved_rows_records_groups_no_fetch_asks_for(tmp_path: Path) -> None:
    _write(
        tmp_path / "market_bars_5m_odd.csv",
        "symbol,market,ts_event,open,high,low,close,volume\n"
        "BTCUSDT,perp,2025-01-01 00:00:00,1,2,0.5,1.5,3\n"
        "BTCUSDT,spot,2025-01-01 00:00:00,1,2,0.5,1.5,3\n"
        "XYZUSDT,perp,2025-01-01 00:00:00,1,2,0.5,1.5,3\n"
        "btcusdt,perp,2025-01-01 00:05:00,1,2,0.5,1.5,3\n"
        ",perp,2025-01-01 00:10:00,1,2,0.5,1.5,3\n"
        "BTCUSDT,option,2025-01-01 00:15:00,1,2,0.5,1.5,3\n"
        "BTCUSDT,perp,never,1,2,0.5,1.5,3\n",  # unparseable ts_event: set aside, not unserved
    )
    served = {("BTCUSDT", "spot"), ("BTCUSDT", "perp")}
    rows = unserved_rows(tmp_path, "market_bars_5m", served)
    assert rows.columns == ["reason", "raw"]
    assert sorted(rows["reason"]) == [
        "not imported: blank symbol",
        "not imported: symbol 'btcusdt' is not an upper-case symbol like BTCUSDT",
        "not imported: symbol XYZUSDT not in the universe",
        "not imported: unknown market 'option'",
    ]
    assert {json.loads(r)["ts_event"][:16] for r in rows["raw"]} == {
        "2025-01-01 00:00",
        "2025-01-01 00:05",
        "2025-01-01 00:10",
        "2025-01-01 00:15",
    }
    assert set_aside_rows(tmp_path, "market_bars_5m")["reason"].to_list() == ["unparseable ts_event (bundle file)"]
    ex = BundleExchange(path=str(tmp_path))
    served_rows = sum(ex.fetch_bars(s, m, *FAR).height for s, m in served)
    assert served_rows + rows.height + 1 == 7  # every row of the file is served, unserved or set aside
    assert unserved_rows(tmp_path, "market_bars_5m", served | {("XYZUSDT", "perp")}).height == 3
    assert unserved_rows(tmp_path, "funding_rates", {("BTCUSDT",)}).is_empty()  # no such rows
    _scored(tmp_path)
    assert unserved_rows(tmp_path, "social_posts_raw", {()}).is_empty()
    assert unserved_rows(tmp_path, "social_posts_raw", set()).height == 2


def _vision_zip(path: Path, name: str, csv: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, csv)
    path.write_bytes(buf.getvalue())


def test_binance_vision_files_and_market_rule(tmp_path: Path) -> None:
    t0 = int(T0.timestamp() * 1000)
    kl = "".join(f"{t0 + i * 300_000},1,2,0.5,1.5,10,{t0 + i * 300_000 + 299_999},15,7,5,7.5,0\n" for i in range(3))
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
        "taker_buy_quote_volume,ignore\n"
    )
    _vision_zip(
        tmp_path / "data/futures/um/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01.zip",
        "BTCUSDT-5m-2025-01.csv",
        header + kl,
    )
    _write(tmp_path / "data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01-01.csv", kl)
    _write(tmp_path / "elsewhere/BTCUSDT-5m-2025-02.csv", kl)  # no spot/futures dir: ignored
    _write(
        tmp_path / "v/BTCUSDT-fundingRate-2025-01.csv",
        f"calc_time,funding_interval_hours,last_funding_rate\n{t0},8,0.0001\n",
    )
    _write(
        tmp_path / "v/BTCUSDT-metrics-2025-01-01.csv",
        "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
        "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
        "2025-01-01 00:05:00,BTCUSDT,100.5,9000000.0,1.1,1.2,1.3,0.9\n",
    )
    ex = BundleExchange(path=str(tmp_path))
    oi, dm = ex.fetch_open_interest("BTCUSDT", *FAR), ex.fetch_derivatives_metrics("BTCUSDT", *FAR)
    # create_time is read as the period start (conservative): available at 00:10 in core
    assert oi["open_interest"].to_list() == [100.5] and oi["ts_event"].to_list() == [T0 + timedelta(minutes=5)]
    assert dm["long_short_account_ratio"].to_list() == [1.3] and dm["mark_price"].null_count() == 1
    assert set(dm["period"]) == {"5m"} and set(oi["source"]) == {"bundle:binance_vision"}
    perp, spot = ex.fetch_bars("BTCUSDT", "perp", *FAR), ex.fetch_bars("BTCUSDT", "spot", *FAR)
    assert (perp.height, spot.height) == (3, 3)
    assert set(perp["source"]) == {"bundle:binance_vision"} and perp["ts_event"][0] == T0
    assert "elsewhere/BTCUSDT-5m-2025-02.csv" in inventory(tmp_path).ignored
    funding = ex.fetch_funding("BTCUSDT", *FAR)
    assert funding["funding_rate"].to_list() == [0.0001]


def test_available_kinds_and_coverage(freqtrade: Path) -> None:
    _scored(freqtrade)
    assert BundleSocial(path=str(freqtrade)).available_kinds() == {"social_posts_raw", "social_comments_raw"}
    assert BundleMacro(path=str(freqtrade)).available_kinds() == set()
    cov = bundle_coverage(freqtrade)
    assert set(cov) == {
        "market_bars_5m",
        "funding_rates",
        "derivatives_metrics",
        "social_posts_raw",
        "social_comments_raw",
    }
    bars = cov["market_bars_5m"]
    assert bars["symbols"] == ["BTCUSDT"] and bars["rows"] == 22
    assert bars["per_symbol"]["BTCUSDT"]["markets"] == ["perp", "spot"]
    assert (bars["start"], bars["end"]) == (T0.date(), T0.date())
    assert cov["funding_rates"]["end"] == (T0 + timedelta(hours=24)).date()
    assert cov["social_posts_raw"]["start"].isoformat() == "2025-10-19"
    assert cov["social_posts_raw"]["symbols"] == ["reddit"] and cov["social_posts_raw"]["rows"] == 2


@pytest.mark.realdata
def test_real_shared_data_window_matches_raw_files() -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} absent")
    start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 10, 22, tzinfo=UTC)
    ex, social = BundleExchange(path=str(REAL)), BundleSocial(path=str(REAL))

    def raw_count(path: Path) -> int:
        d = pl.read_ipc(path)["date"]
        return int(((d >= start) & (d < end)).sum())

    futures = REAL / "binance_usdt_5m" / "futures"
    bars = ex.fetch_bars("BTCUSDT", "perp", start, end)
    assert bars.height == raw_count(futures / "BTC_USDT_USDT-5m-futures.feather") == 21 * 288
    assert bars["close"].null_count() == 0 and bars["ts_event"].is_sorted()
    funding = ex.fetch_funding("BTCUSDT", start, end)
    assert funding.height == raw_count(futures / "BTC_USDT_USDT-1h-funding_rate.feather") == 21 * 3

    text = pl.read_csv(REAL / "social" / "reddit_crypto_posts_comments_text.csv.gz", infer_schema=False)
    local = text["created_date_local_as_published"].str.to_datetime().dt.replace_time_zone("UTC")
    inferred = text["created_at_utc_inferred"].str.to_datetime(time_zone="UTC")
    assert ((local - timedelta(hours=1)) == inferred).all()  # the UTC+1 rule holds in the real file
    # before 2025-10-19 the scored files do not overlap, so every item comes from the text file
    w_start, w_end = datetime(2025, 10, 5, tzinfo=UTC), datetime(2025, 10, 12, tzinfo=UTC)
    in_window = text.filter((inferred >= w_start) & (inferred < w_end))
    n_posts = in_window.filter(pl.col("unified_id").str.starts_with("p_")).height
    posts, comments = social.fetch_posts(w_start, w_end), social.fetch_comments(w_start, w_end)
    assert posts.height == n_posts > 0
    assert comments.height == in_window.height - n_posts > 0
    assert set(posts["source"]) == {"bundle:reddit_text_csv"}
