"""The demo's second world: one symbol whose planted signal is strong enough to pass the gates, on its own home.

The first world (45 days, 3-day test windows) cannot show enough evidence for any candidate, and the gates say
so. Here the synthetic market's planted drift is raised (``STRONG_SIGNAL_BETA`` hourly standard deviations per unit
of latent sentiment, against 0.07 by default) and the history is long enough for six 7-day test windows, so the
whole path runs to a promotion: ingest, features, training, candidate, gates, promote, and a rollback.
"""

from __future__ import annotations

from datetime import date, timedelta

from quantmm_jobs.cli.demo_registry import show_gates_and_promote, show_rollback
from quantmm_jobs.cli.demo_serving import replay_last_days, serve_one_prediction
from quantmm_jobs.cli.printing import print_runs
from quantmm_jobs.cli.runs import instance_for, run_candidates, run_features, run_raw, run_training
from quantmm_resources.environment import build_resources
from quantmm_resources.registry.gated_promotion import gate_status
from quantmm_resources.settings import QuantmmSettings
from quantmm_resources.sources.synthetic import SyntheticExchange

STRONG_SIGNAL_BETA = 1.0
STRONG_SYMBOL = "BTCUSDT"
STRONG_HISTORY_DAYS = 120
STRONG_FIRST_DAY = date(2025, 1, 6)
STRONG_FOLDS = {"n_folds": 8, "test_days": 7, "min_train_days": 30, "inner_k": 2}
STRONG_TRAINING = {"horizons": ["1h"], "row_stride": 2, "variants": ["full"]}
STRONG_BACKBONES = ["ridge", "lightgbm"]


def run_strong_world(settings: QuantmmSettings) -> bool:
    """Run the strong-signal world under ``settings.home / "strong-signal"``; return whether every run succeeded."""
    settings = settings.model_copy(update={"home": settings.home / "strong-signal"})
    instance = instance_for(settings)
    resources = build_resources(settings)
    resources["exchange"] = SyntheticExchange(
        seed=settings.synthetic_seed, symbols=[STRONG_SYMBOL], signal_beta=STRONG_SIGNAL_BETA
    )
    first = STRONG_FIRST_DAY  # a fixed range: the synthetic path of a day depends on the day, not on today
    last = first + timedelta(days=STRONG_HISTORY_DAYS)
    print(
        f"\n=== second world: {STRONG_SYMBOL} over {STRONG_HISTORY_DAYS} days with the planted signal raised to "
        f"{STRONG_SIGNAL_BETA} sd per unit of sentiment (default 0.07), home {settings.home} ==="
    )
    runs = run_raw(first, last, [STRONG_SYMBOL], resources, instance)
    if all(r.success for r in runs):
        runs += run_features(first, last, [STRONG_SYMBOL], resources, instance, fold_config=STRONG_FOLDS)
    if all(r.success for r in runs):
        runs += run_training(STRONG_BACKBONES, resources, instance, STRONG_TRAINING)
    if all(r.success for r in runs):
        runs += run_candidates([STRONG_SYMBOL], STRONG_TRAINING["horizons"], resources, instance)
    print_runs([r for r in runs if "candidate_models" in r.assets or "trained_backbones" in r.assets])
    ok = all(r.success for r in runs)
    if ok:
        horizon = STRONG_TRAINING["horizons"][0]
        registry = resources["registry"]
        if show_gates_and_promote(settings, instance, registry, [STRONG_SYMBOL], [horizon]):
            print("\nretrain: candidate_models again registers and gates a new version")
            again = run_candidates([STRONG_SYMBOL], [horizon], resources, instance)
            ok = all(r.success for r in again)
            if ok and gate_status(instance, STRONG_SYMBOL, horizon).passed:
                show_rollback(instance, registry, settings.resolved_ops_url, STRONG_SYMBOL, horizon)
            ok = (
                ok and serve_one_prediction(settings, STRONG_SYMBOL) and replay_last_days(settings, STRONG_SYMBOL, last)
            )
    return ok
