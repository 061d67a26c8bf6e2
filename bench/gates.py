"""``python -m bench gates``: the promotion gates on the real data, and the registry's timings, printed as JSON.

1. Builds the lake under ``--home`` when it lacks the feature matrix (as ``bench train``: the bundle import of
   ../shared/data, the derived layer and the labels through Dagster), then the walk-forward folds (the production
   fold spec: 3 folds of 30 test days, purge 7 days for the 1d labels).
2. Trains ``--backbones`` (default Ridge and LightGBM) through ``trained_backbones`` on hourly rows for 1h, 4h
   and 1d (variant ``full``), then ``backbone_report``: the same assets and lineage as production.
3. Registers every candidate (``candidate_models``, one run per symbol x horizon) and times it; prints per symbol and
   horizon the model gate's verdict (pass, fail, insufficient evidence), the criterion that decided, the held steps
   and windows, and the leakage and data-quality gates.
4. Times one promotion: the gated function when a candidate passed; otherwise its parts (reading the gate results
   from the instance, and the ledger compare-and-swap with the alias move on a version, on a scratch ledger). Target
   under 1 s.
5. Times a warm load by alias (``models:/name@candidate``) against a bare pyfunc load of the same model directory
   (median of 5 each). Target: within 2x.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import mlflow

from bench.common import bench_paths, bench_settings
from bench.train import _build_lake
from quantmm_assets.defs.matrix_assets import walk_forward_folds
from quantmm_jobs.cli.runs import instance_for, run_candidates, run_selection, run_training
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import FEATURE_CONTRACT, Lake
from quantmm_resources.registry import record_promotion
from quantmm_resources.registry.gated_promotion import gate_status, promote_candidate

HORIZONS = ["1h", "4h", "1d"]
TRAINING = {"horizons": HORIZONS, "row_stride": 12, "variants": ["full"]}


def _median_seconds(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4)


def bench_gates(
    data_dir: Path | None = None,
    home: Path | None = None,
    backbones: list[str] | None = None,
    text_encoder: str = "minilm",
) -> dict:
    data_dir, home = bench_paths(data_dir, home, "gates")
    settings = bench_settings(home, text_encoder)
    out: dict = {"bench": "gates", "data": str(data_dir), "home": str(home)}
    lake = Lake(settings.lake_dir)
    if not lake.side_file(*FEATURE_CONTRACT).exists():
        _build_lake(settings, data_dir, out)
    instance = instance_for(settings)
    resources = build_resources(settings)
    folds = run_selection([walk_forward_folds], resources, instance)
    t0 = time.perf_counter()
    runs = run_training(backbones or ["ridge", "lightgbm"], resources, instance, TRAINING)
    ok = folds.success and all(r.success for r in runs)
    out["training"] = {"seconds": round(time.perf_counter() - t0, 1), "success": ok}
    symbols = sorted(lake.read_partitions("trained_backbones", ["ridge"])["symbol"].unique().to_list())
    t0 = time.perf_counter()
    candidates = run_candidates(symbols, HORIZONS, resources, instance)
    registered = [r for r in candidates if "candidate_models" in r.assets]
    out["registration"] = {
        "candidates": len(registered),
        "seconds_all": round(time.perf_counter() - t0, 1),
        "seconds_per_candidate": [round(r.wall_seconds, 2) for r in registered],
        "success": all(r.success for r in candidates),
    }
    gates, statuses = [], []
    for symbol in symbols:
        for horizon in HORIZONS:
            st = gate_status(instance, symbol, horizon)
            statuses.append((symbol, horizon, st))
            model = st.reports.get("model_gate", {})
            gates.append(
                {
                    "symbol": symbol,
                    "horizon": horizon,
                    "version": st.version,
                    "candidate": model.get("candidate"),
                    "model_gate": model.get("verdict"),
                    "decided_by": model.get("deciding"),
                    "n_held": model.get("n_held"),
                    "n_steps": model.get("n_steps"),
                    "n_windows": model.get("n_windows"),
                    "leakage_gate": st.checks.get("leakage_gate"),
                    "data_quality_gate": st.checks.get("data_quality_gate"),
                    "data_quality_confidence": st.reports.get("data_quality_gate", {}).get("confidence"),
                }
            )
    out["gates"] = gates
    registry, ops = resources["registry"], settings.resolved_ops_url
    passing = [(s, h, st) for s, h, st in statuses if st.passed]
    if passing:
        s, h, st = passing[0]
        t0 = time.perf_counter()
        promote_candidate(instance, registry, ops, s, h, "bench", "bench: timing")
        out["promotion"] = {"gated": True, "model": st.model_name, "seconds": round(time.perf_counter() - t0, 4)}
    else:
        s, h, st = statuses[0]
        read = _median_seconds(lambda: gate_status(instance, s, h))
        scratch = f"sqlite:///{home / 'scratch-ledger.db'}"
        client = registry.client()
        t0 = time.perf_counter()  # the ledger's compare-and-swap, and an alias move on a scratch alias (not active)
        record_promotion(scratch, st.model_name, st.version, "bench", "bench: timing (scratch ledger)", None, None)
        client.set_registered_model_alias(st.model_name, "bench-timing", st.version)
        move = time.perf_counter() - t0
        client.delete_registered_model_alias(st.model_name, "bench-timing")
        out["promotion"] = {
            "gated": False,
            "why": "no candidate passed its gates on this data: timed in parts",
            "gate_read_seconds": read,
            "ledger_and_alias_seconds": round(move, 4),
            "seconds": round(read + move, 4),
        }
    out["promotion"]["target_seconds"] = 1.0
    name = statuses[0][2].model_name
    registry.load(name, "candidate")  # cold: downloads the artifacts once
    local = mlflow.artifacts.download_artifacts(registry.model_uri(name, "candidate"))
    bare = _median_seconds(lambda: mlflow.pyfunc.load_model(local))
    by_alias = _median_seconds(lambda: registry.load(name, "candidate"))
    out["load"] = {"bare_seconds": bare, "alias_seconds": by_alias, "ratio": round(by_alias / bare, 2)}
    out["load"]["target_ratio"] = 2.0
    (home / "bench_gates.json").write_text(json.dumps(out, indent=2, default=str))
    return out
