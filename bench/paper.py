"""``python -m bench paper``: the paper replay's speed (``quantmm_serving.paper.run.run_replay``), printed as JSON.

1. **Synthetic, 30 days x 10 symbols.** A served world built like ``bench serve``'s (``bench/serve_world.py``: the
   seeded synthetic raw sample through ``core.ingest.normalize`` and the core feature code) but with every universe
   symbol and ``days + 7`` days: ``feature_matrix_main`` (5-minute rows), ``market_bars_5m`` (perp),
   ``funding_rates``, the feature contract, and one Ridge per (symbol, 1h / 4h) fitted on the rows before
   ``refit_end`` (two days before the replay window, so every bar of the window is one the version never saw) and
   made active through ``promotion.promote`` (bench setup, not a gate path). Built once per ``--synthetic-home``.
2. **Real data, 30 days x 5 symbols** on the home ``python -m bench gates --home DIR`` builds: each registered
   candidate is made active through ``promotion.promote`` (bench setup, not a gate path) and the replay runs over the
   30 days the walk-forward out-of-sample predictions (``trained_backbones``, variant ``full``) cover best. Skipped,
   saying why, when the home lacks them.

Each replay runs on a fresh book (a timestamped name), then once more on the same book: a restart, which must skip
every step. The bench's own setup (world build, promotions) is outside the timed section. Target: each replay under
60 s.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import bench_settings
from bench.serve_world import DIM, SEED, START, _embedder, _raw, registry_of, serve_settings
from quantmm_assets.core.labels import BAR

TARGET_SECONDS = 60.0
HORIZONS = ("1h", "4h")
ALPHA = 10.0
WARMUP_DAYS = 7  # world days beyond the replay: 1 of feature warm-up, 4 of training, 2 of embargo before the window
MARKER = "paper_world.json"
SETUP = "bench setup, not a gate path: promotion.promote made these versions active"


# -- the synthetic world ----------------------------------------------------------------------------------------
def _write(lake, asset: str, frame: pl.DataFrame) -> None:
    from quantmm_resources.lake import write_atomic

    keyed = frame.with_columns(pl.col("ts_event").dt.date().cast(pl.Utf8).alias("__day"))
    for (day, symbol), part in keyed.group_by("__day", "symbol", maintain_order=True):
        write_atomic(part.drop("__day").sort("ts_event"), lake.partition_file(asset, f"{day}|{symbol}"))


def ensure_paper_world(home: Path, days: int) -> dict:
    """The paper world under ``home`` (its marker), built when absent."""
    marker = home / MARKER
    if marker.exists():
        doc = json.loads(marker.read_text())
        if doc["replay_days"] != days:
            raise SystemExit(
                f"{home} holds a paper world for --days {doc['replay_days']}: pass another --synthetic-home for {days}"
            )
        return doc | {"reused": True}
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    doc = _build(serve_settings(home), days)
    doc["build_seconds"] = round(time.perf_counter() - t0, 1)
    marker.write_text(json.dumps(doc, indent=2))
    return doc | {"reused": False}


def _build(settings, days: int) -> dict:
    from quantmm_assets.core.costs import CostConfig
    from quantmm_assets.core.features.matrix import build_feature_rows, feature_contract
    from quantmm_assets.core.labels import HORIZONS as BARS
    from quantmm_assets.core.labels import labels_multi_horizon
    from quantmm_assets.core.signal import SignalConfig
    from quantmm_assets.models.data import model_data
    from quantmm_assets.models.registry import BACKBONES
    from quantmm_resources.lake import Lake
    from quantmm_resources.registry.promotion import promote

    symbols = list(settings.universe().symbols)
    world_days = days + WARMUP_DAYS
    raw = _raw(settings, symbols, world_days)
    first, end = START + timedelta(days=1), START + timedelta(days=world_days)
    matrix = build_feature_rows(raw, symbols, first, end, _embedder(), DIM)
    spread = matrix.select("symbol", "ts_event", "cs_spread_1d")
    labels = labels_multi_horizon(
        raw.bars, spread, first, end, CostConfig(), {h: BARS[h] for h in HORIZONS}, funding=raw.funding
    )
    contract = feature_contract(DIM)
    names = [n for n in contract.names if n != "symbol_code"]
    lake = Lake(settings.lake_dir)
    _write(lake, "feature_matrix_main", matrix)
    in_world = pl.col("symbol").is_in(symbols)
    _write(lake, "market_bars_5m", raw.bars.filter(in_world & (pl.col("market") == "perp")))
    _write(lake, "funding_rates", raw.funding.filter(in_world))
    lake.write_feature_contract(contract.to_dict())

    last = matrix["ts_event"].max()
    start = last - timedelta(days=days) + BAR  # the replay window: the last ``days`` days of bars
    refit_end = start - timedelta(days=2)  # every bar of the window is > refit_end + max(1 day, 4h)
    data = model_data(matrix, labels, names, HORIZONS, latent_dim=DIM)
    cut = int((refit_end - timedelta(hours=4)).timestamp() * 1_000_000)  # the 4h labels end by refit_end
    train = np.flatnonzero(data.t < cut)
    inner = [(np.setdiff1d(train, b), b) for b in np.array_split(train, 3)]
    model = BACKBONES["ridge"](random_seed=SEED, alpha=ALPHA).fit(data, train, inner)

    registry = registry_of(settings)
    signal = SignalConfig(score_threshold={"1h": 0.01}, confidence_threshold={"1h": 0.5})
    lineage = {"window": {"refit_end": str(refit_end)}, "cost_configs": [CostConfig().as_params()]}
    versions = {}
    for symbol in symbols:
        example = matrix.filter(pl.col("symbol") == symbol).select("symbol", "ts_event", *contract.names).head(5)
        for h in HORIZONS:
            name = registry.model_name(symbol, h)
            v = registry.register_candidate(
                model, symbol, h, signal, contract.version, names, DIM, lineage, np.zeros(50), example
            )
            promote(registry, settings.resolved_ops_url, name, v, "bench", SETUP, {}, None)
            versions[name] = v
    return {
        "symbols": symbols,
        "horizons": list(HORIZONS),
        "replay_days": days,
        "world_days": world_days,
        "start": str(start),
        "end": str(last),
        "refit_end": str(refit_end),
        "train_rows": int(train.size),
        "feature_rows": matrix.height,
        "versions_made_active": versions,
    }


# -- timing ------------------------------------------------------------------------------------------------------
def _refused_bars(refused: dict[str, str]) -> dict[str, int]:
    """``"BTCUSDT|1h" -> bars refused`` from run_replay's refusal texts (``"N of M bars: ..."``)."""
    out = {}
    for key, why in refused.items():
        found = re.match(r"(\d+) of \d+", why)
        out[key] = int(found.group(1)) if found else -1  # -1: the whole (symbol, horizon), e.g. no version ever
    return out


def time_replay(settings, start: datetime, end: datetime, symbols: list[str], book_prefix: str) -> dict:
    """Run the replay on a fresh book, then again on the same book (a restart); return the figures."""
    from quantmm_resources.lake import Lake
    from quantmm_resources.paper_store import read
    from quantmm_serving.paper.engine import PaperConfig
    from quantmm_serving.paper.run import load_market, run_replay

    book = f"{book_prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    config = PaperConfig(book=book)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    summary = run_replay(settings, start, end, config, symbols)
    seconds = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    t0 = time.perf_counter()
    again = run_replay(settings, start, end, config, symbols)
    restart = time.perf_counter() - t0
    # outside the timed sections: the figures the summary does not carry
    market = load_market(Lake(settings.lake_dir), symbols, start, end)
    bar_symbols = sum(len(v) for v in market.bars.values())
    funding_rows = read(settings.resolved_ops_url, "funding", book).height
    refused = _refused_bars(summary["refused"])
    split = summary["seconds"]
    return {
        "book": book,
        "start": str(start),
        "end": str(end),
        "symbols": symbols,
        "seconds": round(seconds, 2),
        "load_average_1m": {"before": round(load_before, 2), "after": round(load_after, 2), "cores": os.cpu_count()},
        "run_replay_seconds": {
            "predict_and_read": split["predict_and_read"],
            "step_loop": round(split["total"] - split["predict_and_read"], 2),
            "total": split["total"],
        },
        "steps": summary.get("steps", 0),
        "steps_run": summary["steps_run"],
        "bars": len(market.bars),
        "bars_x_symbols": bar_symbols,
        "predictions": summary["predictions"],
        "orders": summary.get("orders", 0),
        "fills": summary.get("fills", 0),
        "funding_payments": funding_rows,
        "statuses": summary.get("statuses", {}),
        "refused": {"bars_per_symbol_horizon": refused, "bars_total": sum(max(n, 0) for n in refused.values())},
        "refused_why": summary["refused"],
        "sources": summary["sources"],
        "steps_per_second": round(summary["steps_run"] / seconds, 1) if seconds else None,
        "bar_symbols_per_second": round(bar_symbols / seconds, 1) if seconds else None,
        "pnl": {k: summary.get(k) for k in ("equity", "pnl", "fees", "slippage", "impact", "funding")},
        "restart_same_book": {
            "seconds": round(restart, 2),
            "run_replay_seconds": again["seconds"],
            "steps_run": again["steps_run"],
            "steps_already_recorded": again["steps_already_recorded"],
            "skipped_every_step": again["steps_run"] == 0 and again["steps_already_recorded"] == len(market.bars),
            "orders_after": again.get("orders", 0),
        },
    }


# -- the two runs --------------------------------------------------------------------------------------------------
def bench_synthetic(home: Path, days: int) -> dict:
    world = ensure_paper_world(home, days)
    settings = serve_settings(home)
    start, end = datetime.fromisoformat(world["start"]), datetime.fromisoformat(world["end"])
    out = {"world": {k: v for k, v in world.items() if k != "versions_made_active"}}
    out["world"]["home"] = str(home)
    out["world"]["versions_made_active"] = f"{len(world['versions_made_active'])} ({SETUP})"
    out["replay"] = time_replay(settings, start, end, world["symbols"], "bench-synthetic")
    return out


def _real_missing(home: Path | None) -> str | None:
    from quantmm_resources.lake import Lake

    if home is None:
        return "no --home given"
    if not home.is_dir():
        return f"{home} does not exist"
    lake = Lake(home / "lake")
    for asset in ("feature_matrix_main", "market_bars_5m", "trained_backbones"):
        if not lake.has(asset):
            return f"the lake at {lake.root} has no {asset}"
    if not (home / "mlflow.db").exists():
        return f"{home} has no registry (mlflow.db)"
    return None


def _best_window(lake, backbones: set[str], symbols: list[str], horizons: set[str], days: int):
    """The ``days`` whole days the out-of-sample predictions of ``backbones`` cover best, and that coverage."""
    keys = [b for b in backbones if b in lake.partition_keys("trained_backbones")]
    oos = lake.read_partitions("trained_backbones", keys)
    if oos.is_empty():
        return None
    rows = oos.filter(
        (pl.col("variant") == "full") & pl.col("symbol").is_in(symbols) & pl.col("horizon").is_in(list(horizons))
    ).unique(["symbol", "horizon", "ts_event"])
    if rows.is_empty():
        return None
    per_day = rows.group_by(pl.col("ts_event").dt.date().alias("day")).len()
    grid = pl.DataFrame({"day": pl.date_range(per_day["day"].min(), per_day["day"].max(), "1d", eager=True)})
    grid = grid.join(per_day, on="day", how="left").with_columns(pl.col("len").fill_null(0))
    grid = grid.with_columns(window=pl.col("len").rolling_sum(days, min_samples=1).shift(-(days - 1)))
    best = grid.head(max(grid.height - days + 1, 1)).sort(["window", "day"], descending=[True, True]).row(0, named=True)
    first = datetime(best["day"].year, best["day"].month, best["day"].day, tzinfo=UTC)
    return first, first + timedelta(days=days) - BAR, int(best["window"] or 0)


def bench_real(home: Path | None, days: int) -> dict:
    why = _real_missing(home)
    if why:
        return {"skipped": f"{why}; run python -m bench gates --home {home or 'DIR'} first"}
    from quantmm_resources.lake import Lake
    from quantmm_resources.registry.promotion import current_active, promote

    settings = bench_settings(home)  # gates' settings of its home: never written into os.environ
    registry, ops, lake = registry_of(settings), settings.resolved_ops_url, Lake(settings.lake_dir)
    names = registry.registered_names()
    if not names:
        return {"skipped": f"the registry of {home} has no registered model; run python -m bench gates first"}
    t0 = time.perf_counter()
    promoted, backbones, horizons = {}, set(), set()
    for name in names:
        versions = registry.versions(name)
        if not versions:
            continue
        target = registry.aliases(name).get("candidate") or versions[-1]["version"]
        active = current_active(ops, name)
        if target != active:
            promote(registry, ops, name, target, "bench", SETUP, None, active)
        promoted[name] = target
        lineage = registry.lineage(name, target)
        backbones.add(str(lineage.get("backbone") or registry.version_tags(name, target).get("backbone")))
        horizons.add(name.split(".", 2)[2])
    setup = round(time.perf_counter() - t0, 2)
    if not promoted:
        return {"skipped": f"the registry of {home} has no version; run python -m bench gates --home {home} first"}
    matrix_symbols = {k.split("|")[1] for k in lake.partition_keys("feature_matrix_main") if "|" in k}
    symbols = sorted({n.split(".", 2)[1] for n in promoted} & matrix_symbols)
    window = _best_window(lake, backbones, symbols, horizons, days)
    if window is None:
        return {"skipped": f"no out-of-sample predictions of {sorted(backbones)} in {lake.root}/trained_backbones"}
    start, end, covered = window
    out = {
        "home": str(home),
        "setup": {"versions_made_active": promoted, "why": SETUP, "seconds": setup},
        "window": {
            "chosen_by": "most out-of-sample (trained_backbones, variant full) rows over the symbols and horizons",
            "backbones": sorted(backbones),
            "oos_rows_in_window": covered,
        },
    }
    out["replay"] = time_replay(settings, start, end, symbols, "bench-real")
    return out


def bench_paper(home: Path | None, synthetic_home: Path, days: int = 30) -> dict:
    out: dict = {
        "bench": "paper",
        "note": (
            "figures are wall seconds on this machine's 2 cores, which other work (e.g. a test suite) may share; "
            "world build and promotions are bench setup, outside the timed sections"
        ),
        "synthetic": bench_synthetic(synthetic_home, days),
        "real": bench_real(home, days),
    }
    targets = []
    for part in ("synthetic", "real"):
        replay = out[part].get("replay")
        n_symbols = len(replay["symbols"]) if replay else (10 if part == "synthetic" else 5)
        target = {"target": f"{part}: {days} days x {n_symbols} symbols replayed in < {TARGET_SECONDS:g} s"}
        if replay is None:
            target |= {"seconds": None, "met": None, "why": out[part].get("skipped")}
        else:
            target |= {"seconds": replay["seconds"], "met": replay["seconds"] < TARGET_SECONDS}
        targets.append(target)
    out["targets"] = targets
    return out
