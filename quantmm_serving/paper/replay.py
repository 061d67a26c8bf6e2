"""The predictions a replay trades on, never from a model that saw the step.

A registered version is a refit on all data up to its training end (lineage ``window.refit_end``), so it has seen
every bar up to that end and the labels of those bars, which reach one horizon further. A bar ``b`` is *unseen* by a
version when ``b > refit_end + max(embargo, horizon)`` (the lineage's fold-spec embargo; a day when it names none).

Per (symbol, horizon), the versions considered are those the promotion ledger ever made active (and the active
one): at each bar the newest one that had not seen it predicts (in batch, over the whole range at once). A bar no
version may predict takes the out-of-sample prediction of the walk-forward fold models of the active version's
backbone (``trained_backbones`` in the lake, variant ``full``), with the active version's signal config; a bar
neither covers is refused, and the refusal is counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.costs import round_trip_cost
from quantmm_assets.core.labels import BAR, HORIZONS
from quantmm_assets.core.signal import signal
from quantmm_assets.models.data import model_data
from quantmm_resources.lake import LakeLayout
from quantmm_resources.registry import ModelRegistry, history
from quantmm_resources.registry.pyfunc_model import empty_labels
from quantmm_serving.model_store import LoadedVersion, load_version

MATRIX = "feature_matrix_main"
DEFAULT_EMBARGO = timedelta(days=1)
PREDICTION_COLUMNS = ("symbol", "horizon", "ts_event", "position", "expected_return", "cost", "vol_forecast", "source")


@dataclass
class ReplayPredictions:
    """Per-bar predictions of the range and what could not be predicted."""

    frame: pl.DataFrame  # PREDICTION_COLUMNS
    refused: dict[str, str] = field(default_factory=dict)  # "BTCUSDT|1h" -> why and how many bars
    sources: dict[str, dict[str, int]] = field(default_factory=dict)  # "BTCUSDT|1h" -> {source: bars}


def unseen_from(version: LoadedVersion, lineage: dict) -> datetime | None:
    """The first instant a version has not seen: ``refit_end + max(embargo, longest head)`` (None: end unknown).

    The refit is multi-head: the labels of its longest horizon reach furthest past ``refit_end``, whichever head
    the version answers for. The embargo is the lineage's fold spec's (``folds.embargo_days``), else a day."""
    if version.trained_until is None:
        return None
    spec = lineage.get("fold_spec") or {}
    days = spec.get("folds.embargo_days", spec.get("embargo_days"))
    embargo = timedelta(days=float(days)) if days is not None else DEFAULT_EMBARGO
    heads = [h for h in version.meta.get("horizons", [version.horizon]) if h in HORIZONS] or [version.horizon]
    return version.trained_until + max(embargo, max(HORIZONS[h] for h in heads) * BAR)


def ledger_versions(registry: ModelRegistry, ops_url: str, name: str) -> list[str]:
    """Every version the ledger made active for ``name``, and the active alias, oldest first."""
    found = history(ops_url, name)["to_version"].to_list()[::-1]
    active = registry.aliases(name).get("active")
    return list(dict.fromkeys([*found, *([active] if active else [])]))


def _rows(lake: LakeLayout, symbol: str, start: datetime, end: datetime, lookback: timedelta) -> pl.DataFrame:
    keys = [k for k in lake.partition_keys(MATRIX) if k.endswith(f"|{symbol}")]
    first, last = (start - lookback).date().isoformat(), end.date().isoformat()
    keys = [k for k in keys if first <= k.split("|")[0] <= last]
    rows = lake.read_partitions(MATRIX, keys)
    if rows.is_empty():
        return rows
    return rows.filter((pl.col("ts_event") >= start - lookback) & (pl.col("ts_event") <= end)).sort("ts_event")


def _batch(version: LoadedVersion, rows: pl.DataFrame) -> pl.DataFrame:
    meta = version.meta
    data = model_data(
        rows, empty_labels(), list(meta["feature_names"]), tuple(meta["horizons"]), int(meta["latent_dim"])
    )
    pred = version.backbone.predict(data, np.arange(data.n))[version.horizon]
    spread = (
        rows["cs_spread_1d"] if "cs_spread_1d" in rows.columns else pl.Series([None] * rows.height, dtype=pl.Float64)
    )
    cost = pl.select(round_trip_cost(pl.lit(spread), HORIZONS[version.horizon] * BAR, version.cost)).to_series()
    return _signalled(version, rows["ts_event"], pred.expected_return, pred.vol_forecast, pred.signal_confidence, cost)


def _oos(lake: LakeLayout, active: LoadedVersion, backbone: str, rows: pl.DataFrame) -> pl.DataFrame:
    """The walk-forward out-of-sample predictions of ``backbone`` at ``rows``' bars, signalled like ``active``."""
    if backbone not in lake.partition_keys("trained_backbones"):
        return pl.DataFrame()
    oos = lake.read_partitions("trained_backbones", [backbone]).filter(
        (pl.col("variant") == "full") & (pl.col("symbol") == active.symbol) & (pl.col("horizon") == active.horizon)
    )
    oos = oos.unique("ts_event", keep="first").join(rows.select("ts_event", "cs_spread_1d"), on="ts_event")
    if oos.is_empty():
        return pl.DataFrame()
    cost = oos.select(round_trip_cost(pl.col("cs_spread_1d"), HORIZONS[active.horizon] * BAR, active.cost)).to_series()
    er, vol, conf = (oos[c].to_numpy() for c in ("expected_return", "vol_forecast", "signal_confidence"))
    return _signalled(active, oos["ts_event"], er, vol, conf, cost)


def _signalled(version: LoadedVersion, ts: pl.Series, er, vol, conf, cost: pl.Series) -> pl.DataFrame:
    """The rows of a batch of predictions with the position of the one signal under the version's config."""
    return pl.DataFrame(
        {
            "ts_event": ts,
            "position": signal(er, cost.to_numpy(), vol, conf, version.horizon, version.signal),
            "expected_return": er,
            "cost": cost,
            "vol_forecast": vol,
        }
    )


def replay_predictions(
    lake: LakeLayout,
    registry: ModelRegistry,
    ops_url: str,
    symbols: list[str],
    start: datetime,
    end: datetime,
    loader=load_version,
) -> ReplayPredictions:
    """The predictions of every bar in ``[start, end]`` of ``symbols`` for every registered horizon."""
    out = ReplayPredictions(pl.DataFrame(schema=_SCHEMA))
    parts = []
    for name in registry.registered_names():
        _, symbol, horizon = name.split(".", 2)
        if symbol not in symbols:
            continue
        key = f"{symbol}|{horizon}"
        versions = [loader(registry, name, v) for v in ledger_versions(registry, ops_url, name)]
        if not versions:
            out.refused[key] = "no version was ever active"
            continue
        lookback = max(v.input_rows for v in versions) * BAR
        rows = _rows(lake, symbol, start, end, lookback)
        bars = rows.filter(pl.col("ts_event") >= start).select("ts_event")
        if bars.is_empty():
            out.refused[key] = f"no {MATRIX} rows in the range"
            continue
        chosen = bars.with_columns(source=pl.lit(None, pl.Utf8), since=pl.lit(None, pl.Datetime("us", "UTC")))
        predicted = []
        for v in versions:
            since = unseen_from(v, v.lineage)
            if since is None or since > end:
                continue
            batch = (
                _batch(v, rows)
                .filter(pl.col("ts_event") >= max(start, since))
                .with_columns(source=pl.lit(f"v{v.version}"), since=pl.lit(since, pl.Datetime("us", "UTC")))
            )
            predicted.append(batch)
        active_version = registry.aliases(name).get("active")
        active = next((v for v in versions if v.version == active_version), versions[-1])
        backbone = str(active.lineage.get("backbone") or active.meta.get("backbone"))
        oos = _oos(lake, active, backbone, rows.filter(pl.col("ts_event") >= start))
        if not oos.is_empty():
            predicted.append(
                oos.with_columns(source=pl.lit(f"oos:{backbone}"), since=pl.lit(None, pl.Datetime("us", "UTC")))
            )
        if predicted:
            # per bar: the newest version that had not seen it, else the out-of-sample prediction
            ranked = pl.concat(predicted).sort(
                ["ts_event", pl.col("since").is_null(), "since"], descending=[False, False, True]
            )
            chosen = ranked.unique("ts_event", keep="first", maintain_order=True)
        got = chosen.filter(pl.col("source").is_not_null()) if "source" in chosen.columns else chosen
        missing = bars.height - got.height
        if missing:
            out.refused[key] = (
                f"{missing} of {bars.height} bars: no version that had not seen them and no out-of-sample prediction"
            )
        out.sources[key] = dict(got.group_by("source").len().sort("source").iter_rows())
        parts.append(
            got.select(pl.lit(symbol).alias("symbol"), pl.lit(horizon).alias("horizon"), *PREDICTION_COLUMNS[2:])
        )
    if parts:
        out.frame = pl.concat(parts).cast(_SCHEMA).sort("ts_event", "symbol", "horizon")
    return out


_SCHEMA = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "ts_event": pl.Datetime("us", "UTC"),
    "position": pl.Float64,
    "expected_return": pl.Float64,
    "cost": pl.Float64,
    "vol_forecast": pl.Float64,
    "source": pl.Utf8,
}
