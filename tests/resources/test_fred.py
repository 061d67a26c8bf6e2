"""FredMacro against recorded fredgraph.csv downloads (httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.base import MacroSource
from quantmm_resources.sources.fred import FredMacro, fred_series, parse_fred_csv
from quantmm_resources.sources.http_common import SourceHTTPError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http" / "fred"
BASE = "https://fred.test"
FILES = {
    "DGS10": "fredgraph_DGS10.csv",
    "VIXCLS": "fredgraph_VIXCLS_legacy_header.csv",
    "DTWEXBGS": "fredgraph_DTWEXBGS.csv",
}


class FakeFred:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        series = request.url.params.get("id")
        if request.url.path != "/graph/fredgraph.csv" or series not in FILES:
            return httpx.Response(404, text="<html><title>Error 404</title></html>")
        return httpx.Response(
            200, content=(FIXTURES / FILES[series]).read_bytes(), headers={"Content-Type": "text/csv"}
        )


def make(fake: FakeFred, **config: object) -> FredMacro:
    return FredMacro(base_url=BASE, **config).with_http(transport=httpx.MockTransport(fake), sleep=lambda s: None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_series_map_comes_from_macro_specs() -> None:
    assert fred_series() == {"vix": "VIXCLS", "us10y": "DGS10", "dollar_index": "DTWEXBGS"}
    assert isinstance(FredMacro(), MacroSource)
    assert sorted(FredMacro().series_ids) == ["dollar_index", "us10y", "vix"]


def test_fetch_macro_requests_window_and_keeps_missing_values() -> None:
    fake = FakeFred()
    macro = make(fake).fetch_macro(utc(2024, 1, 1), utc(2024, 1, 6))
    params = {r.url.params["id"]: (r.url.params["cosd"], r.url.params["coed"]) for r in fake.requests}
    assert params == dict.fromkeys(("DGS10", "VIXCLS", "DTWEXBGS"), ("2024-01-01", "2024-01-05"))
    assert macro.columns == RAW_SCHEMAS["macro_series"].source_columns
    assert macro.height == 5 + 4 + 5
    us10y = macro.filter(macro["series_id"] == "us10y")
    assert us10y["ts_event"].to_list() == [utc(2024, 1, d) for d in range(1, 6)]
    assert us10y["value"].to_list() == [None, "3.95", "3.91", "3.99", "4.05"]  # '.' kept as a null value
    assert set(us10y["source_series"]) == {"FRED:DGS10"} and set(us10y["source"]) == {"fred"}
    dollar = macro.filter(macro["series_id"] == "dollar_index")
    assert dollar["value"][0] is None and dollar.height == 5  # empty field kept too
    vix = macro.filter(macro["series_id"] == "vix")
    assert vix["value"].to_list() == ["13.20", "14.04", "14.13", "13.35"]  # legacy DATE header


def test_window_is_half_open() -> None:
    macro = make(FakeFred(), series_ids=["us10y"]).fetch_macro(utc(2024, 1, 2, 6), utc(2024, 1, 4))
    assert macro["ts_event"].to_list() == [utc(2024, 1, 3)]  # 01-02 00:00 < start; 01-04 == end excluded


def test_empty_window_makes_no_request() -> None:
    fake = FakeFred()
    macro = make(fake).fetch_macro(utc(2024, 1, 2, 6), utc(2024, 1, 2, 18))
    assert macro.height == 0 and fake.requests == []
    assert macro.columns == RAW_SCHEMAS["macro_series"].source_columns


def test_bad_config_and_bad_payloads() -> None:
    with pytest.raises(ValueError, match="not FRED series"):
        make(FakeFred(), series_ids=["dxy_ice"]).fetch_macro(utc(2024, 1, 1), utc(2024, 1, 6))
    with pytest.raises(ValueError, match="observation_date/DATE header"):
        parse_fred_csv(b"<!DOCTYPE html><html>Series not found</html>", "vix", "VIXCLS")
    bad = parse_fred_csv(b"observation_date,VIXCLS\n2024-13-45,12.0\n2024-01-02,abc\n", "vix", "VIXCLS")
    assert bad["ts_event"].to_list() == [None, utc(2024, 1, 2)] and bad["value"].to_list() == ["12.0", "abc"]


def test_http_error_is_clear() -> None:
    fake = FakeFred()
    FILES_BACKUP = dict(FILES)
    FILES.pop("VIXCLS")
    try:
        with pytest.raises(SourceHTTPError, match="id=VIXCLS"):
            make(fake, series_ids=["vix"]).fetch_macro(utc(2024, 1, 1), utc(2024, 1, 6))
    finally:
        FILES.update(FILES_BACKUP)
