"""Binance wire parsers: REST klines, Vision CSVs (header / no header, ms / µs), funding, metrics, zips."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.binance_wire import (
    parse_rest_funding,
    parse_rest_klines,
    parse_rest_mark_price_klines,
    parse_rest_open_interest,
    parse_vision_funding_csv,
    parse_vision_klines_csv,
    parse_vision_metrics_csv,
    read_zip_member,
)

HTTP = Path(__file__).parents[1] / "fixtures" / "http"
REST, VISION = HTTP / "binance", HTTP / "binance_vision"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def columns_of(asset: str) -> list[str]:
    return RAW_SCHEMAS[asset].source_columns


def test_parse_rest_klines_fields() -> None:
    payload = json.loads((REST / "futures_klines.json").read_text())
    df = parse_rest_klines(payload, "BTCUSDT", "perp", "binance_rest")
    assert df.columns == columns_of("market_bars_5m")
    assert df.height == len(payload)
    assert df.schema["ts_event"] == pl.Datetime("us", "UTC")
    first = df.row(1, named=True)
    assert first["ts_event"] == utc(2024, 1, 1)
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        "42283.58",
        "42322.50",
        "42274.28",
        "42310.00",
    )
    assert (first["volume"], first["quote_volume"], first["trades"]) == ("217.623", "9207629.13000", "5237")
    assert (first["symbol"], first["market"], first["source"]) == ("BTCUSDT", "perp", "binance_rest")


def test_parse_rest_klines_keeps_malformed_rows() -> None:
    payload = [
        [1704067200000, "1", "2", "0.5", "1.5", "10"],
        "garbage",
        [None, "1", "2", "0.5", "1.5", "10"],
        [],
    ]
    df = parse_rest_klines(payload, "BTCUSDT", "spot", "x")
    assert df.height == 4
    assert df["ts_event"].to_list() == [utc(2024, 1, 1), None, None, None]
    assert df["quote_volume"].to_list() == [None] * 4  # absent in the short row, never invented
    assert df["open"].to_list() == ["1", None, "1", None]


def test_vision_futures_csv_with_header() -> None:
    df = parse_vision_klines_csv((VISION / "futures-um-BTCUSDT-5m-2024-01-01.csv").read_bytes(), "BTCUSDT", "perp", "v")
    assert df.columns == columns_of("market_bars_5m")
    assert df["ts_event"].to_list() == [utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 0, 5), utc(2024, 1, 1, 0, 10)]
    assert df["close"].to_list() == ["42310.00", "42295.10", "42350.40"]
    assert df["trades"].to_list() == ["5237", "5274", "5311"]


def test_vision_spot_csv_without_header_ms_and_us() -> None:
    ms = parse_vision_klines_csv((VISION / "spot-BTCUSDT-5m-2024-12-31.csv").read_bytes(), "BTCUSDT", "spot", "v")
    us = parse_vision_klines_csv((VISION / "spot-BTCUSDT-5m-2025-01-01.csv").read_bytes(), "BTCUSDT", "spot", "v")
    assert ms["ts_event"].to_list() == [utc(2024, 12, 31, 23, 50), utc(2024, 12, 31, 23, 55)]
    assert us["ts_event"].to_list() == [utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 0, 5)]
    assert ms["open"][0] == "93512.01000000" and us["open"][0] == "93576.01000000"


def test_vision_klines_units_detected_per_value_and_bad_rows_kept() -> None:
    data = (
        b"1735689600000000,1,2,0.5,1.5,10,1735689899999999,15,4,1,1,0\n"
        b"1735689900000,1,2,0.5,1.5,10,1735690199999,15,4,1,1,0\n"
        b"not-a-time,1,2,0.5,1.5,10\n"
        b"1735690200000,1\n"
    )
    df = parse_vision_klines_csv(data, "BTCUSDT", "spot", "v")
    assert df.height == 4
    assert df["ts_event"].to_list() == [
        utc(2025, 1, 1, 0, 0),
        utc(2025, 1, 1, 0, 5),
        None,
        utc(2025, 1, 1, 0, 10),
    ]
    assert df["open"].to_list() == ["1", "1", "1", "1"]
    assert df["close"].to_list() == ["1.5", "1.5", "1.5", None]


def test_vision_funding_csv() -> None:
    df = parse_vision_funding_csv((VISION / "futures-um-BTCUSDT-fundingRate-2024-01.csv").read_bytes(), "BTCUSDT", "v")
    assert df.columns == columns_of("funding_rates")
    assert df["ts_event"].to_list() == [
        utc(2024, 1, 1, 0),
        utc(2024, 1, 1, 8),
        utc(2024, 1, 1, 16),
        utc(2024, 1, 2),
    ]
    assert df["funding_rate"].to_list() == ["0.00042016", "0.00030112", "0.00010000", "0.00012055"]
    assert df["mark_price"].null_count() == 4


def test_vision_metrics_csv_maps_columns_and_reads_the_stamp_as_period_start() -> None:
    data = (VISION / "futures-um-BTCUSDT-metrics-2024-01-01.csv").read_bytes()
    oi, dm = parse_vision_metrics_csv(data, "BTCUSDT", "v")
    assert oi.columns == columns_of("open_interest") and dm.columns == columns_of("derivatives_metrics")
    # conservative: ts_event = create_time, so core makes a row available at create_time + 5m
    starts = [
        utc(2024, 1, 1, 0, 0),
        utc(2024, 1, 1, 0, 5),
        utc(2024, 1, 1, 0, 10),
        utc(2024, 1, 1, 23, 55),
    ]
    assert oi["ts_event"].to_list() == starts and dm["ts_event"].to_list() == starts
    assert set(oi["period"]) == {"5m"} and set(dm["period"]) == {"5m"}
    assert oi.row(1, named=True)["open_interest"] == "74225.31200000"
    assert oi.row(1, named=True)["open_interest_value"] == "3139729697.60000000"
    row = dm.row(1, named=True)
    assert row["top_long_short_account_ratio"] == "1.41410000"
    assert row["top_long_short_position_ratio"] == "1.61730000"
    assert row["long_short_account_ratio"] == "1.20450000"
    assert row["taker_buy_sell_ratio"] == "0.99120000"
    assert row["basis"] is None and row["mark_price"] is None


def test_vision_metrics_bad_time_kept() -> None:
    header = (VISION / "futures-um-BTCUSDT-metrics-2024-01-01.csv").read_text().splitlines()[0]
    oi, dm = parse_vision_metrics_csv(f"{header}\nyesterday,BTCUSDT,1,2,3,4,5,6\n".encode(), "BTCUSDT", "v")
    assert oi.height == 1 and dm.height == 1
    assert oi["ts_event"][0] is None and oi["open_interest"][0] == "1"


def test_rest_funding_open_interest_and_mark_price() -> None:
    funding = parse_rest_funding(json.loads((REST / "funding_rate.json").read_text()), "BTCUSDT", "r")
    assert funding.columns == columns_of("funding_rates")
    assert funding["ts_event"][2] == datetime(2024, 1, 1, 8, 0, 0, 1000, tzinfo=UTC)  # 1 ms late, kept as sent
    assert funding["mark_price"][3] is None  # "" on the wire
    oi = parse_rest_open_interest(json.loads((REST / "open_interest_hist.json").read_text()), "BTCUSDT", "5m", "r")
    assert oi["ts_event"][0] == utc(2024, 1, 1)  # stamped 00:00, read as the period start (conservative)
    assert oi["open_interest"][1] == "74225.31200000"
    mark = parse_rest_mark_price_klines(json.loads((REST / "mark_price_klines.json").read_text()), "BTCUSDT", "5m")
    assert mark["ts_event"][1] == utc(2024, 1, 1) and mark["mark_price"][1] == "42308.75000000"


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_read_zip_member() -> None:
    csv = (VISION / "spot-BTCUSDT-5m-2024-12-31.csv").read_bytes()
    assert read_zip_member(zipped({"BTCUSDT-5m-2024-12-31.csv": csv})) == csv
    with pytest.raises(ValueError, match="exactly one CSV"):
        read_zip_member(zipped({"a.csv": csv, "b.csv": csv}))
    with pytest.raises(ValueError, match="exactly one CSV"):
        read_zip_member(zipped({"README.txt": b"hi"}))
