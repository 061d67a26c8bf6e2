"""FRED client: daily macro series from the public ``fredgraph.csv`` download (no API key).

``GET {base}/graph/fredgraph.csv?id=SERIES&cosd=YYYY-MM-DD&coed=YYYY-MM-DD`` returns
``observation_date,SERIES`` (older files: ``DATE,SERIES``) and one row per observation. FRED writes ``.``
(or nothing) for a missing value: such rows are kept with a null ``value`` (core quarantines them with
a reason). Values stay FRED's text, converted once in ``core.ingest``. The series are the entries of
``core.availability.MACRO_SERIES_SPECS`` whose ``source_series`` starts with ``FRED:``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import polars as pl
from pydantic import Field

from quantmm_assets.core.availability import MACRO_SERIES_SPECS

from .base import MacroSource
from .http_common import HttpSourceResource, drop_exact_duplicates, to_source_frame, window_filter

SOURCE = "fred"
FRED_PREFIX = "FRED:"
DATE_HEADERS = ("observation_date", "date")
MISSING_VALUES = ("", ".")


def fred_series() -> dict[str, str]:
    """Canonical series id -> FRED series code (``vix`` -> ``VIXCLS``, ...)."""
    return {
        spec.series_id: spec.source_series.removeprefix(FRED_PREFIX)
        for spec in MACRO_SERIES_SPECS.values()
        if spec.source_series.startswith(FRED_PREFIX)
    }


def parse_fred_csv(data: bytes, series_id: str, fred_code: str, source: str = SOURCE) -> pl.DataFrame:
    """A ``fredgraph.csv`` download as a ``macro_series`` source frame ('.' / empty -> null value)."""
    rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
    if not rows or rows[0][0].strip().lower() not in DATE_HEADERS:
        excerpt = data[:200].decode("utf-8", "replace")
        raise ValueError(f"FRED {fred_code}: expected an observation_date/DATE header, got {excerpt!r}")
    header = [c.strip() for c in rows[0]]
    column = header.index(fred_code) if fred_code in header else 1
    dates, values = [], []
    for row in rows[1:]:
        dates.append(row[0].strip() or None)
        value = row[column].strip() if column < len(row) else ""
        values.append(None if value in MISSING_VALUES else value)
    raw = pl.DataFrame({"date": dates, "value": values}, schema={"date": pl.Utf8, "value": pl.Utf8})
    frame = raw.select(
        pl.lit(series_id).alias("series_id"),
        pl.col("date")
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d", strict=False)
        .dt.replace_time_zone("UTC")
        .alias("ts_event"),
        "value",
        pl.lit(f"{FRED_PREFIX}{fred_code}").alias("source_series"),
        pl.lit(source).alias("source"),
    )
    return to_source_frame(frame, "macro_series")


class FredMacro(MacroSource, HttpSourceResource):
    """VIX, 10y Treasury yield and the broad dollar index from FRED."""

    base_url: str = Field(default="https://fred.stlouisfed.org", description="FRED base URL.")
    series_ids: list[str] = Field(
        default=sorted(fred_series()),
        description="Canonical series ids to download (FRED-sourced ones only).",
    )

    def fetch_macro(self, start: datetime, end: datetime) -> pl.DataFrame:
        codes = fred_series()
        unknown = sorted(set(self.series_ids) - set(codes))
        if unknown:
            raise ValueError(f"not FRED series in MACRO_SERIES_SPECS: {unknown}; FRED serves {sorted(codes)}")
        start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
        first = start_utc.date() + timedelta(days=0 if start_utc.time() == datetime.min.time() else 1)
        last = (end_utc - timedelta(microseconds=1)).date()
        frames = [to_source_frame(pl.DataFrame(schema={"ts_event": pl.Datetime("us", "UTC")}), "macro_series")]
        if first <= last:
            for series_id in self.series_ids:
                params = {"id": codes[series_id], "cosd": first.isoformat(), "coed": last.isoformat()}
                response = self.http_get(f"{self.base_url}/graph/fredgraph.csv", params)
                frames.append(parse_fred_csv(response.content, series_id, codes[series_id]))
        df = drop_exact_duplicates(pl.concat(frames, how="vertical"), ["series_id", "ts_event"])
        return window_filter(df, start, end).sort(["series_id", "ts_event"], nulls_last=True, maintain_order=True)
