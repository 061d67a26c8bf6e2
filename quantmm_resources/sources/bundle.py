"""The offline bundle: a directory of market, macro and social files read without internet.

Discovery is by file name (and, for CSV/JSONL, the header line) anywhere under the bundle directory, so
the real files of ``shared/data`` are accepted unchanged; docs/bundle.md documents every rule. Each file is
parsed once per process (cached on path, mtime and size); fetches slice pre-sorted per-symbol frames.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources import bundle_readers as rd
from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource, empty_source_frame

log = logging.getLogger(__name__)

MANIFEST = "bundle.toml"
EXCHANGE_ASSETS = ("market_bars_5m", "funding_rates", "open_interest", "derivatives_metrics")
SOCIAL_ASSETS = ("social_posts_raw", "social_comments_raw")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")

_FT_SPOT = re.compile(r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-5m\.feather$")
_FT_FUT = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)_[A-Z0-9]+-"
    r"(?:(?P<bars>5m-futures)|\d+[mhd]-(?P<funding>funding_rate)|(?P<mark>1h-mark))\.feather$"
)
_VISION = re.compile(r"^(?P<sym>[A-Z0-9]+)-(?P<kind>5m|fundingRate|metrics)-\d{4}-\d{2}(?:-\d{2})?\.(?:csv|zip)$")
_VISION_KIND = {"5m": "klines", "fundingRate": "funding", "metrics": "metrics"}
_SPOT_DIRS = {"spot"}
_PERP_DIRS = {"futures", "um", "perp", "usdm"}
_MACRO_PREFIX = (("US10Y_TNX", "tnx_cboe"), ("TNX", "tnx_cboe"), ("DXY_", "dxy_ice"), ("VIX_", "vix_cboe"))
_FRED_IDS = {s.split(":", 1)[1] for s in rd.SERIES_BY_SOURCE if s.startswith("FRED:")}
# When two formats carry the same key, the lowest priority number wins (the other copies are dropped).
PRIORITY = {
    "canonical": 0,
    "vision": 1,
    "reddit_posts": 1,
    "reddit_comments": 1,
    "fred": 1,
    "macro_close": 1,
    "freqtrade": 2,
    "oi_wide": 2,
    "reddit_text": 2,
}


@dataclass(frozen=True)
class BundleFile:
    """One recognised file: its format, the reader parameters its name gave, and its stat signature."""

    path: str
    fmt: str
    assets: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    mtime_ns: int = 0
    size: int = 0


@dataclass
class Inventory:
    """Recognised and ignored files of one bundle, with the directory mtimes that validate it."""

    files: tuple[BundleFile, ...]
    ignored: tuple[str, ...]
    dirs: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, tuple[dict[tuple, pl.DataFrame], pl.DataFrame]] = field(default_factory=dict)
    micros: dict[tuple, np.ndarray] = field(default_factory=dict)  # sorted ts_event per (asset, group)


# ------------------------------------------------------------------------------------------ discovery
def _market_from_path(rel: Path) -> str | None:
    """spot | perp from the nearest directory named spot / futures, um, perp, usdm."""
    for part in reversed([p.lower() for p in rel.parts[:-1]]):
        if part in _SPOT_DIRS:
            return "spot"
        if part in _PERP_DIRS:
            return "perp"
    return None


def _canonical_asset(name: str, header: set[str]) -> str | None:
    """The raw asset of a generic canonical CSV/JSONL, by name first, then by header."""
    lname = name.lower()
    for asset in sorted(RAW_SCHEMAS, key=len, reverse=True):
        if asset in lname:
            return asset
    if {"platform", "id"} <= header:
        if "comments" in lname or "post_id" in header or "parent_id" in header:
            return "social_comments_raw"
        return "social_posts_raw"
    if {"series_id", "value"} <= header:
        return "macro_series"
    if "symbol" in header and header & {"ts_event", "date"}:
        if "market" in header:
            return "market_bars_5m"
        if "funding_rate" in header:
            return "funding_rates"
        if "long_short_account_ratio" in header or "mark_price" in header and "period" in header:
            return "derivatives_metrics"
        if header & {"open_interest", "open_interest_value"}:
            return "open_interest"
    return None


def classify(path: Path, root: Path) -> BundleFile | None:
    """Recognise one file by name (and header for CSV/JSONL); None when it is not a bundle file."""
    name = path.name
    if m := _FT_SPOT.match(name):
        return BundleFile(
            str(path), "freqtrade", ("market_bars_5m",), (("kind", "spot"), ("symbol", m["base"] + m["quote"]))
        )
    if m := _FT_FUT.match(name):
        kind, asset = (
            ("perp", "market_bars_5m")
            if m["bars"]
            else ("funding", "funding_rates")
            if m["funding"]
            else ("mark", "derivatives_metrics")
        )
        return BundleFile(str(path), "freqtrade", (asset,), (("kind", kind), ("symbol", m["base"] + m["quote"])))
    if m := _VISION.match(name):
        kind = _VISION_KIND[m["kind"]]
        params: tuple[tuple[str, str], ...] = (("kind", kind), ("symbol", m["sym"]))
        if kind == "klines":
            market = _market_from_path(path.relative_to(root))
            if market is None:
                log.warning("bundle: %s has no spot/futures directory above it; ignored", path)
                return None
            return BundleFile(str(path), "vision", ("market_bars_5m",), params + (("market", market),))
        assets = ("funding_rates",) if kind == "funding" else ("open_interest", "derivatives_metrics")
        return BundleFile(str(path), "vision", assets, params)
    if not name.endswith(TABLE_SUFFIXES):
        return None
    header = set(rd.read_header(path))
    if "unified_id" in header:
        return BundleFile(str(path), "reddit_text", SOCIAL_ASSETS)
    if {"submission_id", "title"} <= header:
        return BundleFile(str(path), "reddit_posts", ("social_posts_raw",))
    if "comment_id" in header:
        return BundleFile(str(path), "reddit_comments", ("social_comments_raw",))
    if "date" in header and header & _FRED_IDS:
        return BundleFile(str(path), "fred", ("macro_series",))
    for prefix, series in _MACRO_PREFIX:
        if name.upper().startswith(prefix) and {"date", "close"} <= header:
            return BundleFile(str(path), "macro_close", ("macro_series",), (("series_id", series),))
    if "date" in header and any(c.lower().endswith("_oi_value_usd") for c in header):
        return BundleFile(str(path), "oi_wide", ("open_interest",))
    if (asset := _canonical_asset(name, header)) and header & {"ts_event", "date"}:
        return BundleFile(str(path), "canonical", (asset,), (("asset", asset),))
    return None


def _load_manifest(root: Path) -> dict:
    """Parse the optional ``bundle.toml`` (``exclude`` globs)."""
    p = root / MANIFEST
    return tomllib.loads(p.read_text()) if p.is_file() else {}


def scan(root: Path) -> Inventory:
    """Walk ``root`` recursively and classify every file."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"bundle directory not found: {root}")
    exclude = list(_load_manifest(root).get("exclude", []))
    files, ignored, dirs = [], [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        dirs[dirpath] = os.stat(dirpath).st_mtime_ns
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            rel = path.relative_to(root).as_posix()
            if fn.startswith(".") or fn == MANIFEST or fn.lower().endswith((".md", ".txt")):
                continue
            if any(fnmatch.fnmatch(rel, pat) for pat in exclude):
                ignored.append(rel)
                continue
            bf = classify(path, root)
            if bf is None:
                ignored.append(rel)
                continue
            st = path.stat()
            files.append(BundleFile(bf.path, bf.fmt, bf.assets, bf.params, st.st_mtime_ns, st.st_size))
    return Inventory(tuple(files), tuple(ignored), dirs)


_INVENTORIES: dict[str, Inventory] = {}
_LOCK = threading.Lock()


def inventory(root: str | Path) -> Inventory:
    """The cached inventory of ``root``; rescanned when a directory's mtime changed (files added/removed)."""
    key = str(Path(root).resolve())
    with _LOCK:
        inv = _INVENTORIES.get(key)
        try:
            fresh = inv is not None and all(os.stat(d).st_mtime_ns == m for d, m in inv.dirs.items())
        except OSError:
            fresh = False
        if not fresh:
            inv = _INVENTORIES[key] = scan(Path(key))
        return inv


def clear_bundle_cache() -> None:
    """Forget every cached inventory and parsed frame (e.g. after rewriting a file in place)."""
    with _LOCK:
        _INVENTORIES.clear()
    _read_file.cache_clear()
    _asset_index.cache_clear()


# -------------------------------------------------------------------------------------------- loading
@lru_cache(maxsize=16)
def _read_file(bf: BundleFile) -> dict[str, pl.DataFrame]:
    """Parse one file (cached: a file feeding two assets is read once)."""
    p, params = Path(bf.path), dict(bf.params)
    if bf.fmt == "freqtrade":
        return rd.read_freqtrade(p, params["kind"], params["symbol"])
    if bf.fmt == "vision":
        return rd.read_vision(p, params["kind"], params["symbol"], params.get("market", "perp"))
    readers = {
        "oi_wide": rd.read_oi_wide,
        "fred": rd.read_fred,
        "reddit_text": rd.read_reddit_text,
        "reddit_posts": rd.read_reddit_scored_posts,
        "reddit_comments": rd.read_reddit_scored_comments,
    }
    if bf.fmt in readers:
        return readers[bf.fmt](p)
    if bf.fmt == "macro_close":
        return rd.read_macro_close(p, params["series_id"])
    return rd.read_canonical(p, params["asset"])


def _group_cols(asset: str) -> list[str]:
    if asset == "market_bars_5m":
        return ["symbol", "market"]
    return ["symbol"] if asset in EXCHANGE_ASSETS else []


@lru_cache(maxsize=32)
def _asset_index(files: tuple[BundleFile, ...], asset: str) -> tuple[dict[tuple, pl.DataFrame], pl.DataFrame]:
    """All rows of ``asset`` from ``files``, split per symbol (and market), sorted by ts_event; and the rows set
    aside (reason, raw): copies of a key superseded by a preferred format, rows whose ts_event does not parse."""
    parts = [_read_file(bf)[asset].with_columns(pl.lit(PRIORITY[bf.fmt], pl.Int8).alias("_prio")) for bf in files]
    parts = [p for p in parts if p.height]
    if not parts:
        return {}, pl.DataFrame(schema={"reason": pl.Utf8, "raw": pl.Utf8})
    frame = pl.concat(parts, how="diagonal_relaxed")
    key = list(RAW_SCHEMAS[asset].key)
    superseded = (pl.col("_prio") > pl.col("_prio").min().over(key)) & pl.col("ts_event").is_not_null()
    raw = pl.struct([pl.col(c).cast(pl.Utf8) for c in frame.columns if c != "_prio"]).struct.json_encode()
    reason = pl.when(pl.col("ts_event").is_null()).then(pl.lit("unparseable ts_event (bundle file)"))
    reason = reason.otherwise(pl.lit("duplicate key: superseded by a preferred bundle format"))
    set_aside = frame.filter(superseded | pl.col("ts_event").is_null()).select(reason.alias("reason"), raw.alias("raw"))
    if len(set_aside):
        log.warning(
            "bundle: %d %s rows set aside (%s)",
            len(set_aside),
            asset,
            dict(set_aside["reason"].value_counts().iter_rows()),
        )
    frame = frame.filter(~superseded & pl.col("ts_event").is_not_null()).drop("_prio")
    frame = frame.sort("ts_event", maintain_order=True)
    groups = _group_cols(asset)
    if not groups:
        return {(): frame}, set_aside
    split = {tuple(k): g for k, g in frame.partition_by(groups, as_dict=True, maintain_order=True).items()}
    return split, set_aside


def _index(root: str | Path, asset: str) -> tuple[dict[tuple, pl.DataFrame], pl.DataFrame]:
    inv = inventory(root)
    index = inv.indexes.get(asset)
    if index is None:  # first use of this inventory: files unchanged since a rescan still hit the lru cache
        index = inv.indexes[asset] = _asset_index(tuple(f for f in inv.files if asset in f.assets), asset)
    return index


def load_asset(root: str | Path, asset: str) -> dict[tuple, pl.DataFrame]:
    """Per-group frames of ``asset`` in the bundle (group = (symbol, market) | (symbol,) | ())."""
    return _index(root, asset)[0]


def set_aside_rows(root: str | Path, asset: str) -> pl.DataFrame:
    """Rows of ``asset`` no window will serve (columns reason, raw): the import records them as rejects."""
    return _index(root, asset)[1]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(ts: datetime) -> int:
    """Epoch microseconds of ``ts`` (naive datetimes are taken as UTC)."""
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    return (ts - _EPOCH) // timedelta(microseconds=1)


def window(root: str | Path, asset: str, group: tuple, start: datetime, end: datetime) -> pl.DataFrame:
    """Rows of ``asset`` for ``group`` with ``start <= ts_event < end``."""
    inv = inventory(root)
    frame = load_asset(root, asset).get(group)
    if frame is None:
        return empty_source_frame(asset)
    micros = inv.micros.get((asset, group))
    if micros is None:
        micros = inv.micros[(asset, group)] = frame["ts_event"].dt.epoch("us").to_numpy()
    lo, hi = np.searchsorted(micros, [_micros(start), _micros(end)], side="left")
    return frame.slice(int(lo), max(int(hi - lo), 0))


def available_assets(root: str | Path) -> set[str]:
    """Raw assets the bundle has at least one recognised file for."""
    return {a for f in inventory(root).files for a in f.assets}


def bundle_coverage(path: str | Path) -> dict[str, dict]:
    """Per raw asset: ``symbols``, first/last ts_event ``start``/``end`` dates, ``rows`` and ``per_symbol``.

    The "symbol" of ``macro_series`` is the series id and of social assets the platform; ``per_symbol``
    maps it to ``{"start", "end", "rows", "markets"}`` (markets only for ``market_bars_5m``).
    """
    out: dict[str, dict] = {}
    for asset in sorted(available_assets(path)):
        index = load_asset(path, asset)
        if not index:
            continue
        name = {"macro_series": "series_id", **dict.fromkeys(SOCIAL_ASSETS, "platform")}.get(asset, "symbol")
        frame = pl.concat(
            [f.select(name, "ts_event", *(["market"] if asset == "market_bars_5m" else [])) for f in index.values()],
            how="diagonal_relaxed",
        )
        stats = (
            frame.group_by(pl.col(name).cast(pl.Utf8).fill_null(""))
            .agg(
                pl.col("ts_event").min().dt.date().alias("start"),
                pl.col("ts_event").max().dt.date().alias("end"),
                pl.len().alias("rows"),
                (pl.col("market").unique().sort() if asset == "market_bars_5m" else pl.lit([], pl.List(pl.Utf8))).alias(
                    "markets"
                ),
            )
            .sort(name)
        )
        per: dict[str, dict] = {r.pop(name): r for r in stats.iter_rows(named=True)}
        out[asset] = {
            "symbols": [k for k in per if k],
            "start": stats["start"].min(),
            "end": stats["end"].max(),
            "rows": frame.height,
            "per_symbol": per,
        }
    return out


# ------------------------------------------------------------------------------------------ resources
class BundleExchange(ExchangeSource):
    """Market bars and derivatives read from an offline bundle directory."""

    path: str

    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        """5m bars of ``market`` (spot | perp) in [start, end)."""
        return window(self.path, "market_bars_5m", (symbol.upper(), market), start, end)

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Funding settlements in [start, end)."""
        return window(self.path, "funding_rates", (symbol.upper(),), start, end)

    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Open interest snapshots in [start, end)."""
        return window(self.path, "open_interest", (symbol.upper(),), start, end)

    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Ratios, basis and mark price in [start, end)."""
        return window(self.path, "derivatives_metrics", (symbol.upper(),), start, end)

    def available_kinds(self) -> set[str]:
        """Exchange raw assets the bundle has files for."""
        return available_assets(self.path) & set(EXCHANGE_ASSETS)


class BundleMacro(MacroSource):
    """Daily macro series read from an offline bundle directory."""

    path: str

    def fetch_macro(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Observations of every series in [start, end)."""
        return window(self.path, "macro_series", (), start, end)

    def available_kinds(self) -> set[str]:
        """{"macro_series"} when the bundle has a macro file, else empty."""
        return available_assets(self.path) & {"macro_series"}


class BundleSocial(SocialSource):
    """Social posts and comments read from an offline bundle directory."""

    path: str

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Posts published in [start, end)."""
        return window(self.path, "social_posts_raw", (), start, end)

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Comments published in [start, end)."""
        return window(self.path, "social_comments_raw", (), start, end)

    def available_kinds(self) -> set[str]:
        """Social raw assets the bundle has files for."""
        return available_assets(self.path) & set(SOCIAL_ASSETS)
