"""The derived layer through Dagster on the synthetic sample: features, labels, folds and their checks."""

import json
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.core.features.matrix import feature_contract
from quantmm_assets.defs.matrix_assets import walk_forward_folds
from quantmm_jobs.cli.runs import run_features, run_raw, run_selection
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings

SYMBOLS = ["BTCUSDT"]
# One worker runs the whole module: the module's lake (``built``) takes most of a minute to build.
pytestmark = pytest.mark.xdist_group("feature-assets")
FIRST, LAST = date(2025, 2, 1), date(2025, 3, 14)  # 42 days: enough for two purged walk-forward folds
SMALL_FOLDS = {"n_folds": 2, "test_days": 2, "min_train_days": 20, "inner_k": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Raw layer and derived layer over FIRST..LAST for one symbol, on one persistent instance."""
    home = tmp_path_factory.mktemp("features")
    mp = pytest.MonkeyPatch()
    mp.setenv("QUANTMM_HOME", str(home / "qhome"))
    mp.setenv("QUANTMM_TEXT_ENCODER", "hashing")  # MiniLM itself is tested in tests/resources
    for var in ("DAGSTER_PG_URL", "DAGSTER_HOME", "QUANTMM_OPS_URL"):
        mp.delenv(var, raising=False)
    get_settings.cache_clear()
    resources = build_resources(get_settings(), source="synthetic")
    with dg.instance_for_test() as instance:
        raw = run_raw(FIRST - timedelta(days=3), LAST + timedelta(days=8), SYMBOLS, resources, instance)
        runs = run_features(FIRST, LAST, SYMBOLS, resources, instance, fold_config=SMALL_FOLDS)
        yield home / "qhome", raw, runs, resources, instance
    mp.undo()
    get_settings.cache_clear()


def test_whole_derived_layer_materializes_and_every_leakage_check_passes(built):
    _home, raw, runs, _res, _inst = built
    assert all(r.success for r in raw + runs)
    checks = {k: v for r in runs for k, v in r.checks.items()}
    expected = {
        "macro_features:asof_alignment",
        "text_items:asof_alignment",
        "market_features:asof_alignment",
        "derivatives_features:asof_alignment",
        "text_bucket_features:asof_alignment",
        "text_latents:asof_alignment",
        "feature_matrix_main:asof_alignment",
        "feature_matrix_main:truncation_invariance",
        "labels_multi_horizon:label_alignment",
        "walk_forward_folds:fold_hygiene",
    }
    assert set(checks) == expected
    assert all(v == "passed" for v in checks.values()), {k: v for k, v in checks.items() if v != "passed"}


def test_matrix_rows_follow_the_contract_and_carry_text(built):
    home, *_ = built
    day = home / "lake/feature_matrix_main/date=2025-03-10/symbol=BTCUSDT/data.parquet"
    fm = pl.read_parquet(day)
    contract = feature_contract(384)
    assert fm.columns == ["symbol", "ts_event", "ts_available", *contract.names]
    assert len(fm) == 288 and (fm["ts_available"] == fm["ts_event"]).all()
    assert fm["post_latent"].is_not_null().sum() > 100  # the synthetic sample talks about BTC every hour
    assert fm["text_missing"].sum() == 0 and fm["funding_missing"].sum() == 0
    saved = json.loads((home / "lake/feature_matrix_main/contract.json").read_text())
    assert saved["version"] == contract.version and list(saved["columns"]) == list(contract.names)


def test_labels_are_known_only_after_their_horizon(built):
    home, *_ = built
    labels = pl.read_parquet(home / "lake/labels_multi_horizon/date=2025-03-10/symbol=BTCUSDT/data.parquet")
    assert sorted(labels["horizon"].unique().to_list()) == ["1d", "1h", "4h", "7d"]
    gap = labels.group_by("horizon").agg((pl.col("ts_available") - pl.col("ts_event")).unique().alias("gap"))
    assert {r["horizon"]: r["gap"] for r in gap.iter_rows(named=True)}["7d"] == [timedelta(days=7)]
    assert labels["complete"].all()  # bars were ingested 8 days past LAST


def test_folds_whose_purge_is_shorter_than_the_longest_label_fail_the_hygiene_check(built):
    _home, _raw, _runs, resources, instance = built
    leaky = run_selection([walk_forward_folds], resources, instance, {**SMALL_FOLDS, "purge_days": 1.0})
    assert not leaky.success  # the blocking check stops the run
    assert leaky.checks["walk_forward_folds:fold_hygiene"].startswith("FAILED")


def test_research_folds_are_refused_unless_the_readiness_audit_passes(built):
    _home, _raw, _runs, resources, instance = built
    # the lake holds BTCUSDT only: funding and perp bars cover a tenth of the universe over all history
    research = run_selection([walk_forward_folds], resources, instance, {**SMALL_FOLDS, "mode": "research"})
    assert not research.success
    (error,) = research.errors.values()
    assert "research mode trains on all history" in error and "'funding'" in error and "'perp_bars_5m'" in error
    production = run_selection([walk_forward_folds], resources, instance, SMALL_FOLDS)
    assert production.success
    spec = resources["lake"].fold_spec()
    assert spec["expanding"] is False and spec["train_days"] == 365  # windows roll once they reach 365 days
    bad = run_selection([walk_forward_folds], resources, instance, {**SMALL_FOLDS, "mode": "everything"})
    assert "unknown mode 'everything'" in next(iter(bad.errors.values()))


def test_label_partitions_are_complete_only_once_their_forward_windows_are_in(built):
    _home, _raw, _runs, resources, instance = built
    from quantmm_assets.defs.feature_assets import market_features
    from quantmm_assets.defs.matrix_assets import labels_multi_horizon
    from quantmm_jobs.cli.runs import run_range

    # bars reach LAST + 8 days: a day 3 days after LAST lacks the end of its 7-day windows
    day = LAST + timedelta(days=3)
    run = run_range([market_features, labels_multi_horizon], day, day, SYMBOLS, resources, instance)
    assert run.success
    event = instance.get_latest_materialization_event(dg.AssetKey("labels_multi_horizon"))
    assert event.asset_materialization.partition == f"{day}|BTCUSDT"
    assert event.asset_materialization.metadata["complete"].value is False


def test_macro_feature_days_report_their_rows_and_completeness(built):
    _home, _raw, _runs, _resources, instance = built
    event = instance.get_latest_materialization_event(dg.AssetKey("macro_features"))
    md = event.asset_materialization.metadata
    assert FIRST <= date.fromisoformat(event.asset_materialization.partition) <= LAST
    assert md["rows"].value >= 1 and md["complete"].value is True and md["run_complete"].value is True


def test_text_latents_of_another_encoder_are_refused_and_nothing_is_written(built, monkeypatch):
    home, _raw, _runs, _resources, instance = built
    from quantmm_assets.defs.text_assets import text_latents

    pin = json.loads((home / "lake/text_latents/encoder.json").read_text())
    assert pin["encoder_id"] == "hashing-v1/384"  # the hashing lake of the fixture
    target = home / "lake/text_latents/date=2025-03-10/symbol=BTCUSDT/data.parquet"
    before = target.read_bytes()
    monkeypatch.setenv("QUANTMM_TEXT_ENCODER", "minilm")
    get_settings.cache_clear()
    try:
        minilm = build_resources(get_settings(), source="synthetic")
        run = run_selection([text_latents], minilm, instance, partition_key="2025-03-10|BTCUSDT")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()  # no MiniLM settings left cached for later tests
    assert not run.success
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    error = failure.dagster_event.step_failure_data.error.to_string()
    assert "pinned to hashing-v1/384" in error and "minilm-l6-v2/384" in error
    assert target.read_bytes() == before


def test_a_partition_rematerialized_with_a_leak_in_a_separate_run_is_not_trained_on(built, monkeypatch):
    from quantmm_assets.defs import matrix_assets
    from quantmm_assets.defs.training_lineage import UnvouchedInputs, vouched_inputs
    from quantmm_jobs.cli.runs import run_range

    _home, _raw, _runs, resources, instance = built
    lake = resources["lake"]
    assert run_selection([walk_forward_folds], resources, instance, SMALL_FOLDS).success
    clean = vouched_inputs(instance, lake, "refuse")  # the feature run vouches for every partition
    assert clean.excluded == [] and clean.compared()["feature_matrix_main.asof_alignment"] > 0
    day, key = date(2025, 3, 5), "2025-03-05|BTCUSDT"
    assert key in clean.partitions
    honest = matrix_assets.assemble_matrix

    def leaky(*args, **kwargs):  # ret_1h at t becomes the return of the hour after t: look-ahead
        return honest(*args, **kwargs).with_columns(pl.col("ret_1h").shift(-12).over("symbol"))

    monkeypatch.setattr(matrix_assets, "assemble_matrix", leaky)
    run = run_range([matrix_assets.feature_matrix_main], day, day, SYMBOLS, resources, instance)
    assert not run.success and run.checks["feature_matrix_main:asof_alignment"].startswith("FAILED")
    with pytest.raises(UnvouchedInputs, match=f"feature_matrix_main {key}: asof_alignment failed") as refused:
        vouched_inputs(instance, lake, "refuse")
    assert "1 partition(s)" in str(refused.value)
    excluded = vouched_inputs(instance, lake, "exclude")
    assert excluded.excluded == [key] and key not in excluded.partitions
    assert len(excluded.partitions) == len(clean.partitions) - 1

    monkeypatch.setattr(matrix_assets, "assemble_matrix", honest)  # a clean re-materialization vouches again
    assert run_range([matrix_assets.feature_matrix_main], day, day, SYMBOLS, resources, instance).success
    assert vouched_inputs(instance, lake, "refuse").partitions == clean.partitions
