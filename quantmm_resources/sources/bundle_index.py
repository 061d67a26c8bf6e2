"""Loading of the offline bundle: each file parsed once, rows per asset split per group and sorted by time.

A group is ``(symbol, market)`` for bars, ``(symbol,)`` for the other exchange assets and ``()`` for macro
and social rows; a fetch is a binary search plus a slice of its group. Rows no window serves are never lost:
``set_aside_rows`` (superseded copies, unparseable ts_event) and ``unserved_rows`` (groups no fetch asks for)
return them for the import to record as rejects.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources import bundle_readers as rd
from quantmm_resources.sources.base import empty_source_frame
from quantmm_resources.sources.bundle_inventory import (
    EXCHANGE_ASSETS,
    PRIORITY,
    SOCIAL_ASSETS,
    BundleFile,
    available_assets,
    forget_inventories,
    inventory,
)

log = logging.getLogger(__name__)


def clear_bundle_cache() -> None:
    """Forget every cached inventory and parsed frame (e.g. after rewriting a file in place)."""
    forget_inventories()
    _read_file.cache_clear()
    _asset_index.cache_clear()


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
        return rd.read_macro_close(p, params["series_id"], params["source_series"])
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
    if asset == "macro_series":  # a blank observation (holiday placeholder) never supersedes a value
        frame = frame.with_columns((pl.col("_prio") + pl.col("value").is_null().cast(pl.Int8) * 10).alias("_prio"))
    key = list(RAW_SCHEMAS[asset].key)
    superseded = (pl.col("_prio") > pl.col("_prio").min().over(key)) & pl.col("ts_event").is_not_null()
    raw = _raw_json([c for c in frame.columns if c != "_prio"])
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


def _raw_json(columns: list[str]) -> pl.Expr:
    """The row as a JSON object of text values (the ``raw`` column of a reject)."""
    return pl.struct([pl.col(c).cast(pl.Utf8) for c in columns]).struct.json_encode()


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
    """Rows of ``asset`` no window will serve (columns reason, raw): the import records them as rejects.

    These are copies of a key superseded by a preferred format and rows whose ts_event does not parse; rows
    of groups the import never fetches are returned by :func:`unserved_rows`."""
    return _index(root, asset)[1]


def _unserved_reason(asset: str, group: tuple) -> str:
    """Why no fetch serves ``group`` of ``asset`` (the import asks for upper-case universe symbols)."""
    if not group:
        return f"not imported: {asset} not imported"
    symbol = group[0]
    if asset == "market_bars_5m" and group[1] not in ("spot", "perp"):
        return f"not imported: unknown market {group[1]!r}"
    if symbol is None or not str(symbol).strip():
        return "not imported: blank symbol"
    if symbol != str(symbol).strip().upper():
        return f"not imported: symbol {symbol!r} is not an upper-case symbol like BTCUSDT"
    return f"not imported: symbol {symbol} not in the universe"


def unserved_rows(root: str | Path, asset: str, served_groups: set[tuple]) -> pl.DataFrame:
    """Every row of ``asset`` in a group not in ``served_groups`` (columns reason, raw), so none is lost.

    Groups are the keys of :func:`load_asset`: ``(symbol, market)`` for ``market_bars_5m``, ``(symbol,)`` for
    the other exchange assets, ``()`` for macro and social. ``served_groups`` are those the import fetches
    (e.g. ``{(s, m) for s in universe for m in ("spot", "perp")}``); the rest (a symbol outside the universe,
    a lower-case or blank symbol, an unknown market) come back with a reason for the rejects table.
    Disjoint from :func:`set_aside_rows`."""
    parts = [
        frame.select(pl.lit(_unserved_reason(asset, group)).alias("reason"), _raw_json(frame.columns).alias("raw"))
        for group, frame in load_asset(root, asset).items()
        if group not in served_groups
    ]
    parts = [p for p in parts if p.height]
    if not parts:
        return pl.DataFrame(schema={"reason": pl.Utf8, "raw": pl.Utf8})
    out = pl.concat(parts, how="vertical")
    log.warning(
        "bundle: %d %s rows in groups no fetch serves (%s)",
        out.height,
        asset,
        dict(out["reason"].value_counts().iter_rows()),
    )
    return out


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
