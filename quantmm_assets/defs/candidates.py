"""What ``candidate_models`` decides from: the evidence of every trained backbone for one (symbol, horizon), the
pick of the candidate, and the comparators' out-of-sample rows on the candidate's own windows.

- The evidence is the out-of-sample predictions of every materialized ``trained_backbones`` partition (variant
  ``full``) and the baselines ``backbone_report`` refit on the same folds and rows (``zero``, ``momentum`` and the
  frozen ``ridge_price``), all under the one ``SignalConfig`` the backbones were trained and evaluated under.
- The candidate is the backbone ranked first for (symbol, horizon) by :func:`core.evaluation.report.rank_backbones`
  (only "evidence for" rows rank; without any, the first of the order, which the gate will not pass).
- The active version joins the comparators only where at least half of the candidate's windows start after its
  training data ended (plus the embargo): it then predicts those windows with its own refit, and the other windows
  count as flat for it (a version cannot be scored on data it was trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantmm_assets.core.evaluation.evidence import evidence_table
from quantmm_assets.core.evaluation.metrics import fold_metrics, trading_steps
from quantmm_assets.core.evaluation.report import BASELINES, rank_backbones
from quantmm_assets.core.folds import TEST, WALK_FORWARD
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.models.experiment import prediction_frame
from quantmm_assets.models.finetune import all_keys
from quantmm_assets.models.protocol import Backbone
from quantmm_resources.lake import LakeLayout
from quantmm_resources.model_inputs import load_model_data

ACTIVE = "active"


@dataclass(frozen=True)
class CandidateEvidence:
    """The out-of-sample evidence for one (symbol, horizon) and the candidate picked from it."""

    symbol: str
    horizon: str
    candidate: str
    predictions: pl.DataFrame  # variant full: every trained backbone and the baselines (and ``active``)
    ranking: pl.DataFrame
    signal: SignalConfig
    summaries: dict[str, dict[str, Any]]
    configurations: list[str]

    @property
    def run_id(self) -> str:
        return str(self.summaries[self.candidate]["mlflow_run_id"])

    def steps(self) -> pl.DataFrame:
        return trading_steps(self.predictions, self.horizon, self.signal)

    def comparators(self) -> list[str]:
        present = set(self.predictions["backbone"].unique().to_list())
        return [b for b in (*BASELINES, ACTIVE) if b in present]


def baseline_file(lake: LakeLayout) -> Path:
    """Where ``backbone_report`` keeps the baselines' out-of-sample predictions."""
    return lake.side_file("backbone_report", "baseline_predictions.parquet")


def one_signal(summaries: dict[str, dict[str, Any]]) -> SignalConfig:
    """The one signal config every trained backbone was evaluated under (an error when they differ)."""
    configs = {b: SignalConfig.from_params(s["signal_config"]) for b, s in summaries.items()}
    distinct = set(configs.values())
    if len(distinct) != 1:
        by = ", ".join(f"{b}: {c.config_hash()}" for b, c in sorted(configs.items()))
        raise ValueError(f"the trained backbones were evaluated under different signal configs ({by}): retrain them")
    return distinct.pop()


def gather_evidence(lake: LakeLayout, symbol: str, horizon: str) -> CandidateEvidence:
    """Read the evidence for (symbol, horizon) and pick the candidate."""
    summaries = {b: s for b, s in lake.run_summaries().items() if b in set(all_keys())}
    files = [f for f in (lake.partition_file("trained_backbones", k) for k in sorted(summaries)) if f.exists()]
    if not files:
        raise ValueError("candidate_models: no trained_backbones partition is materialized: run quantmm train")
    if not baseline_file(lake).exists():
        raise ValueError("candidate_models: no baseline predictions: materialize backbone_report first")
    # one (symbol, horizon) of every backbone's predictions: the filter is pushed into the Parquet scans
    mine = (pl.col("symbol") == symbol) & (pl.col("horizon") == horizon) & (pl.col("variant") == "full")
    trained = pl.scan_parquet(files).filter(mine).collect()
    baselines = pl.scan_parquet(baseline_file(lake)).filter(mine).select(trained.columns).collect()
    predictions = pl.concat([trained, baselines])
    configurations = sorted(set(trained["backbone"].unique().to_list()))
    if not configurations:
        raise ValueError(f"candidate_models: no trained backbone predicted {symbol} {horizon}")
    signal = one_signal({b: summaries[b] for b in configurations})
    ranking = rank_backbones(
        fold_metrics(predictions, signal), evidence_table(trading_steps(predictions, horizon, signal)), "full", False
    )
    candidate = str(ranking["backbone"][0])
    return CandidateEvidence(symbol, horizon, candidate, predictions, ranking, signal, summaries, configurations)


def test_windows(folds: pl.DataFrame) -> list[tuple[int, datetime, datetime]]:
    """The walk-forward test windows ``(fold, start, end)`` in fold order."""
    tests = folds.filter((pl.col("kind") == WALK_FORWARD) & (pl.col("role") == TEST) & (pl.col("fold") >= 0))
    spans = tests.group_by("fold").agg(pl.col("start").min(), pl.col("end").max()).sort("fold")
    return [(int(f), s, e) for f, s, e in spans.iter_rows()]


def active_rows(
    lake: LakeLayout,
    evidence: CandidateEvidence,
    folds: pl.DataFrame,
    backbone: Backbone,
    trained_until: datetime,
    embargo: timedelta,
) -> tuple[pl.DataFrame | None, str]:
    """The active version's predictions on the candidate's windows that start after its training data (or None)
    and one sentence saying why it is or is not a comparator."""
    windows = test_windows(folds)
    after = [(f, s, e) for f, s, e in windows if s >= trained_until + embargo]
    if not windows or 2 * len(after) < len(windows):
        why = f"the active version was trained until {trained_until:%Y-%m-%d}: {len(after)} of {len(windows)} windows"
        return None, why + " lie after it (fewer than half): not a comparator"
    days = sorted({(s + timedelta(days=i)).date() for _, s, e in after for i in range((e - s).days + 1)})
    keys = [f"{d}|{evidence.symbol}" for d in days]
    keys = [k for k in keys if lake.partition_file("feature_matrix_main", k).exists()]
    try:
        inputs = load_model_data(lake, tuple(backbone.horizons_), partitions=keys)
        data, t = inputs.data, inputs.data.t
        frames = []
        for fold, start, end in after:
            rows = np.flatnonzero((t >= int(start.timestamp() * 1e6)) & (t < int(end.timestamp() * 1e6)))
            if rows.size:
                pred = backbone.predict(data, rows)
                frames.append(prediction_frame(ACTIVE, "full", fold, data, rows, pred, inputs.symbols))
    except ValueError as exc:  # another feature contract or horizons: it cannot predict these rows
        return None, f"the active version cannot predict the candidate's rows ({exc}): not a comparator"
    if not frames:
        return None, "the active version has no rows in the windows after its training data: not a comparator"
    rows = pl.concat(frames).filter(pl.col("horizon") == evidence.horizon)
    why = f"the active version predicts the {len(after)} of {len(windows)} windows after its training data"
    return rows, why
