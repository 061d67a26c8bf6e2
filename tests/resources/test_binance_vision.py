"""BinanceVisionExchange against a fake archive serving zipped fixture CSVs (httpx.MockTransport)."""

from __future__ import annotations

import io
import logging
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.binance_vision import BinanceVisionExchange
from quantmm_resources.sources.http_common import SourceHTTPError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http" / "binance_vision"
BASE = "https://vision.test"
M5 = timedelta(minutes=5)
NOW = datetime(2024, 2, 15, 9, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def zipped(csv_name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        member = csv_name.removeprefix("futures-um-").removeprefix("spot-")  # e.g. BTCUSDT-5m-2024-01-01.csv
        archive.writestr(member, (FIXTURES / csv_name).read_bytes())
    return buffer.getvalue()


UM, SPOT = "/data/futures/um", "/data/spot"
ARCHIVE = {
    f"{UM}/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-01.zip": "futures-um-BTCUSDT-5m-2024-01-01.csv",
    f"{SPOT}/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-12-31.zip": "spot-BTCUSDT-5m-2024-12-31.csv",
    f"{SPOT}/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01-01.zip": "spot-BTCUSDT-5m-2025-01-01.csv",
    f"{UM}/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip": ("futures-um-BTCUSDT-fundingRate-2024-01.csv"),
    f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-01.zip": "futures-um-BTCUSDT-metrics-2024-01-01.csv",
    f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-02.zip": "futures-um-BTCUSDT-metrics-2024-01-02.csv",
}


class FakeVision:
    """The archive: known paths answer their zipped fixture, anything else 404 (as S3 does)."""

    def __init__(self, extra: dict[str, str] | None = None, status: dict[str, int] | None = None) -> None:
        self.files = {**ARCHIVE, **(extra or {})}
        self.status = status or {}
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if path in self.status:
            return httpx.Response(self.status[path], text="<Error><Code>InternalError</Code></Error>")
        if path not in self.files:
            return httpx.Response(404, text="<Error><Code>NoSuchKey</Code></Error>")
        return httpx.Response(200, content=zipped(self.files[path]), headers={"Content-Type": "application/zip"})


def make(fake: FakeVision, now: datetime = NOW, **config: Any) -> BinanceVisionExchange:
    source = BinanceVisionExchange(base_url=BASE, **config)
    return source.with_http(transport=httpx.MockTransport(fake), sleep=lambda s: None, clock=lambda: now)


def test_perp_day_reads_the_daily_futures_file() -> None:
    fake = FakeVision()
    bars = make(fake).fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 1, 1, 0, 10))
    assert fake.paths == ["/data/futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-01.zip"]
    assert bars.columns == RAW_SCHEMAS["market_bars_5m"].source_columns
    assert bars["ts_event"].to_list() == [utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 0, 5)]  # 00:10 is outside
    assert set(bars["market"]) == {"perp"} and set(bars["source"]) == {"binance_vision"}


def test_spot_milliseconds_and_microseconds_files() -> None:
    fake = FakeVision()
    bars = make(fake, now=utc(2025, 2, 15)).fetch_bars("BTCUSDT", "spot", utc(2024, 12, 31), utc(2025, 1, 2))
    assert fake.paths == [
        "/data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-12-31.zip",
        "/data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01-01.zip",
    ]
    assert bars["ts_event"].to_list() == [
        utc(2024, 12, 31, 23, 50),
        utc(2024, 12, 31, 23, 55),
        utc(2025, 1, 1, 0, 0),
        utc(2025, 1, 1, 0, 5),
    ]
    assert bars["close"].to_list() == ["93560.42000000", "93576.00000000", "93650.10000000", "93633.33000000"]


def test_missing_day_is_recorded_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeVision()
    source = make(fake)
    with caplog.at_level(logging.WARNING):
        bars = source.fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 1, 3))
    missing = f"{BASE}/data/futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-02.zip"
    assert bars.height == 3
    assert source.missing_files == [missing]
    assert missing in caplog.text and "404" in caplog.text


def test_whole_past_month_uses_the_monthly_file_and_falls_back_to_daily() -> None:
    monthly = "/data/futures/um/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01.zip"
    fake = FakeVision(extra={monthly: "futures-um-BTCUSDT-5m-2024-01-01.csv"})
    bars = make(fake).fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 2, 1))
    assert fake.paths == [monthly] and bars.height == 3

    fake = FakeVision()  # monthly file not published yet: one request per day instead
    source = make(fake)
    bars = source.fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 2, 1))
    assert fake.paths[0] == monthly and len(fake.paths) == 1 + 31
    assert fake.paths[1].endswith("BTCUSDT-5m-2024-01-01.zip") and fake.paths[-1].endswith("2024-01-31.zip")
    assert bars.height == 3 and len(source.missing_files) == 31


def test_unfinished_days_are_not_requested() -> None:
    fake = FakeVision()
    bars = make(fake, now=utc(2024, 1, 1, 12)).fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 1, 2))
    assert fake.paths == [] and bars.height == 0
    assert bars.columns == RAW_SCHEMAS["market_bars_5m"].source_columns


def test_funding_reads_the_monthly_file_for_the_window() -> None:
    fake = FakeVision()
    source = make(fake)
    funding = source.fetch_funding("BTCUSDT", utc(2024, 1, 1), utc(2024, 1, 2))
    assert fake.paths == ["/data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"]
    assert funding.columns == RAW_SCHEMAS["funding_rates"].source_columns
    assert funding["ts_event"].to_list() == [utc(2024, 1, 1, 0), utc(2024, 1, 1, 8), utc(2024, 1, 1, 16)]
    assert funding["funding_rate"].to_list() == ["0.00042016", "0.00030112", "0.00010000"]
    assert source.fetch_funding("BTCUSDT", utc(2024, 2, 1), utc(2024, 2, 2)).height == 0  # month not over
    assert len(fake.paths) == 1


def test_metrics_day_reads_its_own_file_stamp_is_period_start() -> None:
    fake = FakeVision()
    source = make(fake)
    oi = source.fetch_open_interest("BTCUSDT", utc(2024, 1, 1), utc(2024, 1, 2))
    dm = source.fetch_derivatives_metrics("BTCUSDT", utc(2024, 1, 1), utc(2024, 1, 2))
    # ts_event = create_time (read as the period start, conservatively): a day's rows are all in its own file,
    # fetched once for both assets
    assert fake.paths == ["/data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-01.zip"]
    expected = [
        utc(2024, 1, 1, 0, 0),
        utc(2024, 1, 1, 0, 5),
        utc(2024, 1, 1, 0, 10),
        utc(2024, 1, 1, 23, 55),
    ]
    assert oi["ts_event"].to_list() == expected and dm["ts_event"].to_list() == expected
    assert oi.columns == RAW_SCHEMAS["open_interest"].source_columns
    assert oi["open_interest"].to_list() == [
        "74210.31200000",
        "74225.31200000",
        "74240.31200000",
        "75102.88800000",
    ]
    assert dm["taker_buy_sell_ratio"][-1] == "1.01230000" and set(dm["period"]) == {"5m"}
    nxt = source.fetch_open_interest("BTCUSDT", utc(2024, 1, 2), utc(2024, 1, 2, 0, 5))
    assert nxt["ts_event"].to_list() == [utc(2024, 1, 2)] and nxt["open_interest"][0] == "75110.00100000"
    assert fake.paths[-1].endswith("BTCUSDT-metrics-2024-01-02.zip")


def test_server_errors_are_not_mistaken_for_missing_files() -> None:
    path = "/data/futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-01.zip"
    fake = FakeVision(status={path: 500})
    source = make(fake, max_attempts=2)
    with pytest.raises(SourceHTTPError, match="500"):
        source.fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 1, 2))
    assert fake.paths == [path, path] and source.missing_files == []


def test_bad_rows_in_a_file_are_kept() -> None:
    path = "/data/futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01-01.zip"
    rows = (FIXTURES / "futures-um-BTCUSDT-5m-2024-01-01.csv").read_text().splitlines()
    content = "\n".join([*rows[:2], "oops,1,2", *rows[2:]]).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("BTCUSDT-5m-2024-01-01.csv", content)
        return httpx.Response(200, content=buffer.getvalue()) if request.url.path == path else httpx.Response(404)

    source = BinanceVisionExchange(base_url=BASE).with_http(
        transport=httpx.MockTransport(handler), clock=lambda: utc(2024, 2, 1)
    )
    bars = source.fetch_bars("BTCUSDT", "perp", utc(2024, 1, 1), utc(2024, 1, 2))
    assert bars.height == 4 and bars["ts_event"].null_count() == 1
