"""Export the lake as a bundle and read it back through the bundle resources: the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.bundle_export import export_bundle
from quantmm_resources.sources.bundle import BundleExchange, BundleMacro, BundleSocial, bundle_coverage

T0 = datetime(2025, 1, 31, 23, 50, tzinfo=UTC)  # crosses a month boundary
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _frame(asset: str, rows: list[dict]) -> pl.DataFrame:
    schema = RAW_SCHEMAS[asset]
    full = [{c: r.get(c) for c in schema.columns} for r in rows]
    for r in full:
        if r.get("ts_event") is not None:
            r["ts_available"] = r["ts_event"] + timedelta(minutes=5)
        if "symbols" in schema.columns:
            r["symbols"] = ["BTCUSDT"]
    return pl.DataFrame(full, schema=schema.columns)


def _put(lake: Path, asset: str, frame: pl.DataFrame) -> None:
    """Write ``frame`` into the lake layout: <asset>/date=YYYY-MM-DD[/symbol=SYM]/data.parquet."""
    by = ["_date", "symbol"] if RAW_SCHEMAS[asset].partitioned_by_symbol else ["_date"]
    keyed = frame.with_columns(pl.col("ts_event").dt.date().cast(pl.Utf8).alias("_date"))
    for key, part in keyed.partition_by(by, as_dict=True).items():
        d = lake / asset / f"date={key[0]}"
        d = d / f"symbol={key[1]}" if len(key) == 2 else d
        d.mkdir(parents=True, exist_ok=True)
        part.drop("_date").write_parquet(d / "data.parquet")


@pytest.fixture()
def lake(tmp_path: Path) -> dict[str, pl.DataFrame]:
    ts = [T0 + i * timedelta(minutes=5) for i in range(4)]
    frames = {
        "market_bars_5m": _frame(
            "market_bars_5m",
            [
                {
                    "symbol": s,
                    "market": m,
                    "ts_event": t,
                    "open": 1.1 + i,
                    "high": 2.0,
                    "low": 0.1 + 0.2,
                    "close": 1.5,
                    "volume": 10.0 * i,
                    "quote_volume": None if m == "spot" else 15.25,
                    "trades": i or None,
                    "source": "binance_rest",
                }
                for s in ("BTCUSDT", "ETHUSDT")
                for m in ("spot", "perp")
                for i, t in enumerate(ts)
            ],
        ),
        "funding_rates": _frame(
            "funding_rates",
            [
                {
                    "symbol": "BTCUSDT",
                    "ts_event": ts[0],
                    "funding_rate": -1.234e-5,
                    "mark_price": None,
                    "source": "binance_vision",
                }
            ],
        ),
        "open_interest": _frame(
            "open_interest",
            [
                {
                    "symbol": "BTCUSDT",
                    "period": "5m",
                    "ts_event": t,
                    "open_interest": 1e5 / 3,
                    "open_interest_value": None,
                    "source": "binance_rest",
                }
                for t in ts
            ],
        ),
        "derivatives_metrics": _frame(
            "derivatives_metrics",
            [
                {
                    "symbol": "ETHUSDT",
                    "period": "1h",
                    "ts_event": ts[1],
                    "mark_price": 3000.5,
                    "taker_buy_sell_ratio": 0.97,
                    "source": "binance_rest",
                }
            ],
        ),
        "macro_series": _frame(
            "macro_series",
            [
                {
                    "series_id": "vix",
                    "ts_event": datetime(2024, 12, 31, tzinfo=UTC),
                    "value": None,
                    "source_series": "FRED:VIXCLS",
                    "source": "fred",
                },
                {
                    "series_id": "dxy_ice",
                    "ts_event": datetime(2025, 2, 3, tzinfo=UTC),
                    "value": 108.25,
                    "source_series": "ICE:DXY",
                    "source": "bundle:macro_close_csv",
                },
            ],
        ),
        "social_posts_raw": _frame(
            "social_posts_raw",
            [
                {
                    "platform": "reddit",
                    "id": "t3_abc",
                    "ts_event": ts[0] + timedelta(seconds=1, microseconds=7),
                    "author": None,
                    "community": "Bitcoin",
                    "title": 'He said "hi", then',
                    "text": "multi\nline, text ✓",
                    "url": "",
                    "engagement_score": 5,
                    "num_comments": None,
                    "engagement_observed_at": ts[2] + timedelta(microseconds=123),  # written and read back
                    "source": "reddit",
                }
            ],
        ),
        "social_comments_raw": _frame(
            "social_comments_raw",
            [
                {
                    "platform": "reddit",
                    "id": "t1_c1",
                    "post_id": "t3_abc",
                    "parent_id": "t3_abc",
                    "ts_event": ts[3],
                    "author": "x",
                    "community": "Bitcoin",
                    "text": "  padded  ",
                    "engagement_score": None,
                    "engagement_observed_at": None,  # unknown stays null
                    "source": "reddit",
                }
            ],
        ),
    }
    lake_dir = tmp_path / "lake"
    for asset, frame in frames.items():
        _put(lake_dir, asset, frame)
    return frames


def test_export_then_read_back_gives_the_same_rows(tmp_path: Path, lake: dict[str, pl.DataFrame]) -> None:
    out = tmp_path / "bundle"
    summary = export_bundle(tmp_path / "lake", out)
    assert {a: s["rows"] for a, s in summary["assets"].items()} == {a: f.height for a, f in lake.items()}
    assert "market_bars_5m/market_bars_5m-BTCUSDT-2025-02.csv" in summary["assets"]["market_bars_5m"]["files"]
    assert (out / "bundle.toml").is_file()

    ex, macro, social = BundleExchange(path=str(out)), BundleMacro(path=str(out)), BundleSocial(path=str(out))
    assert ex.available_kinds() == {"market_bars_5m", "funding_rates", "open_interest", "derivatives_metrics"}
    got = {
        "market_bars_5m": pl.concat(
            [ex.fetch_bars(s, m, *FAR) for s in ("BTCUSDT", "ETHUSDT") for m in ("spot", "perp")]
        ),
        "funding_rates": ex.fetch_funding("BTCUSDT", *FAR),
        "open_interest": ex.fetch_open_interest("BTCUSDT", *FAR),
        "derivatives_metrics": ex.fetch_derivatives_metrics("ETHUSDT", *FAR),
        "macro_series": macro.fetch_macro(*FAR),
        "social_posts_raw": social.fetch_posts(*FAR),
        "social_comments_raw": social.fetch_comments(*FAR),
    }
    for asset, expected in lake.items():
        schema = RAW_SCHEMAS[asset]
        want = expected.select(schema.source_columns).sort(list(schema.key))
        assert_frame_equal(got[asset].sort(list(schema.key)), want, check_dtypes=True)

    posts = (out / "social" / "social_posts_raw-2025-01.jsonl").read_text()
    assert '"engagement_observed_at":"2025-02-01T00:00:00.000123Z"' in posts  # ISO UTC text, as ts_event
    cov = bundle_coverage(out)
    assert cov["market_bars_5m"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert (cov["market_bars_5m"]["start"].isoformat(), cov["market_bars_5m"]["end"].isoformat()) == (
        "2025-01-31",
        "2025-02-01",
    )
    assert cov["macro_series"]["symbols"] == ["dxy_ice", "vix"]


def test_export_of_an_empty_lake_writes_no_asset(tmp_path: Path) -> None:
    summary = export_bundle(tmp_path / "nolake", tmp_path / "b")
    assert summary["assets"] == {}
    assert BundleExchange(path=str(tmp_path / "b")).available_kinds() == set()
