from datetime import date, timedelta

import polars as pl

from quantmm_assets.core.readiness.audit import audit, to_markdown, window_for
from quantmm_assets.core.universe import Listing, Universe

UNI = Universe((Listing("BTCUSDT", date(2020, 1, 1)), Listing("SOLUSDT", date(2025, 1, 3))))


def counts(rows):
    return pl.DataFrame(
        rows,
        schema={"asset": pl.Utf8, "kind_filter": pl.Utf8, "symbol": pl.Utf8, "date": pl.Date, "rows": pl.Int64},
        orient="row",
    )


def test_window_modes():
    w = window_for("production", date(2025, 3, 1), 420, date(2020, 1, 1))
    assert w.end == date(2025, 2, 28) and (w.end - w.start).days == 419
    assert window_for("research", date(2025, 3, 1), 420, date(2021, 5, 1)).start == date(2021, 5, 1)


def test_audit_lists_missing_kinds_and_backfills_respecting_listing_dates():
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(5)]
    rows = [("market_bars_5m", "perp", "BTCUSDT", d, 288) for d in days]
    rows += [("market_bars_5m", "perp", "SOLUSDT", d, 288) for d in days[2:]]  # listed on the 3rd
    rows += [("funding_rates", None, "BTCUSDT", d, 3) for d in days[:3]]
    w = window_for("research", date(2025, 1, 6), 420, date(2025, 1, 1))
    rep = audit(counts(rows), UNI, w)
    assert rep["kinds"]["perp_bars_5m"]["coverage"] == 1.0 and rep["kinds"]["perp_bars_5m"]["ready"]
    assert rep["kinds"]["funding"]["per_symbol"]["BTCUSDT"]["missing_ranges"] == [["2025-01-04", "2025-01-05"]]
    assert "funding" in rep["missing_kinds"] and "social_posts" in rep["missing_kinds"]
    assert "perp_bars_5m" not in rep["missing_kinds"] and not rep["ready"]
    fill = [b for b in rep["backfills"] if b["kind"] == "funding" and b["symbol"] == "BTCUSDT"]
    assert fill[0]["partition_range"] == "2025-01-04|BTCUSDT...2025-01-05|BTCUSDT"
    assert "| funding |" in to_markdown(rep)


def test_a_day_with_a_handful_of_bars_is_not_covered():
    days = [date(2025, 1, 1), date(2025, 1, 2)]
    rows = [("market_bars_5m", "perp", "BTCUSDT", days[0], 288), ("market_bars_5m", "perp", "BTCUSDT", days[1], 3)]
    uni = Universe((Listing("BTCUSDT", date(2020, 1, 1)),))
    rep = audit(counts(rows), uni, window_for("research", date(2025, 1, 3), 420, days[0]))
    assert rep["kinds"]["perp_bars_5m"]["coverage"] == 0.5


def test_coverage_grid_shares_and_weekends():
    from quantmm_assets.core.readiness.grid import coverage_grid

    days = [date(2025, 1, 3), date(2025, 1, 4)]  # Friday, Saturday
    rows = [("market_bars_5m", "perp", "BTCUSDT", days[0], 288), ("macro_series", None, None, days[0], 3)]
    w = window_for("research", date(2025, 1, 5), 420, days[0])
    grid = coverage_grid(counts(rows), UNI, w)  # SOLUSDT is listed on 2025-01-03 too
    share = {(k, d): v for k, d, v in grid.iter_rows()}
    assert share[("perp_bars_5m", days[0])] == 0.5 and share[("perp_bars_5m", days[1])] == 0.0
    assert share[("macro", days[0])] == 1.0 and share[("macro", days[1])] is None
