"""Discovery of the offline bundle: which files are bundle files, in which format, feeding which raw assets.

Files are recognised by name (and, for CSV/JSONL, the header line) anywhere under the bundle directory;
docs/bundle.md documents every rule. The inventory of a directory is cached and rescanned when a directory's
mtime changes (files added, removed or renamed).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources import bundle_readers as rd

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
_FRED_IDS = {s.split(":", 1)[1] for s in rd.SERIES_BY_SOURCE if s.startswith("FRED:")}
# When two formats carry the same key, the lowest priority number wins (the other copies are set aside).
# FRED before the single-series close files: a ``VIX_*`` close and FRED VIXCLS are the same series ``vix``.
PRIORITY = {
    "canonical": 0,
    "vision": 1,
    "reddit_posts": 1,
    "reddit_comments": 1,
    "fred": 1,
    "macro_close": 2,
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
    for prefix, series, source_series in rd.MACRO_CLOSE_FILES:
        if name.upper().startswith(prefix) and {"date", "close"} <= header:
            params = (("series_id", series), ("source_series", source_series))
            return BundleFile(str(path), "macro_close", ("macro_series",), params)
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


def forget_inventories() -> None:
    """Drop every cached inventory (the parsed frames are cleared by ``bundle_index.clear_bundle_cache``)."""
    with _LOCK:
        _INVENTORIES.clear()


def available_assets(root: str | Path) -> set[str]:
    """Raw assets the bundle has at least one recognised file for."""
    return {a for f in inventory(root).files for a in f.assets}
