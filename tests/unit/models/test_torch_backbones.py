"""The torch backbones beyond the shared contract: windows without look-ahead, determinism, pickling, preflight,
the validation curve, text degradation and trust, and the multi-model mode."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from test_backbone_contract import FAST, as_arrays, splits, synthetic

from quantmm_assets.models.data import TEXT_FLAT_COLUMNS, ModelData, base_and_text_columns
from quantmm_assets.models.registry import BACKBONES
from quantmm_assets.models.torch_base import TorchBackbone, preflight
from quantmm_assets.models.torch_windows import GRID_US, WindowIndex, fit_prep
from quantmm_assets.models.variants import without_latents

TORCH = ("tsmixer", "itransformer", "patchtst", "tft")


def make(name: str, **params: object) -> TorchBackbone:
    return BACKBONES[name](**{"random_seed": 7, **FAST[name], **params})


def fit(name: str, data: ModelData, **params: object) -> tuple[TorchBackbone, np.ndarray]:
    train, test, inner = splits(data)
    return make(name, **params).fit(data, train, inner), test


def subset(data: ModelData, keep: np.ndarray) -> ModelData:
    """Return the rows ``keep`` (a boolean mask) of ``data``."""
    rows = {
        f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in ("horizons", "feature_names")
    }
    return dataclasses.replace(data, **{k: v[keep] for k, v in rows.items()})


def future_changed(data: ModelData, cut: int) -> ModelData:
    """Return ``data`` with features, text and labels of the rows at or after time ``cut`` replaced."""
    after = data.t >= cut
    rng = np.random.default_rng(99)
    x, text, ret = data.x.copy(), data.text.copy(), data.ret.copy()
    x[after] = rng.standard_normal((after.sum(), x.shape[1])) * 50
    text[after & data.text_mask] = rng.standard_normal(((after & data.text_mask).sum(), text.shape[1]))
    ret[after] = np.where(np.isfinite(ret[after]), -ret[after], np.nan)
    return dataclasses.replace(data, x=x, text=text, ret=ret)


@pytest.fixture(scope="module")
def small() -> ModelData:
    return synthetic(3, n_t=300)


@pytest.fixture(scope="module")
def fitted(small: ModelData) -> dict[str, tuple[TorchBackbone, np.ndarray]]:
    """One fitted model per torch backbone on ``small`` (shared by the prediction-only tests)."""
    return {name: fit(name, small) for name in TORCH}


def test_window_rows_are_the_same_symbol_on_the_grid_and_never_after_t(small: ModelData) -> None:
    keep = np.random.default_rng(0).random(small.n) > 0.2  # missing grid rows
    data = subset(small, keep)
    index = WindowIndex(data.t, data.symbol_code, input_size=6)
    rows = index.rows(np.arange(data.n))
    assert rows.shape == (data.n, 6) and (rows[:, -1] == np.arange(data.n)).all()
    found = rows >= 0
    lags = np.arange(5, -1, -1) * GRID_US
    i = np.broadcast_to(np.arange(data.n)[:, None], rows.shape)
    np.testing.assert_array_equal(data.t[rows[found]], (data.t[:, None] - lags)[found])
    np.testing.assert_array_equal(data.symbol_code[rows[found]], data.symbol_code[i[found]])
    assert (data.t[rows[found]] <= data.t[i[found]]).all()
    # every grid row that exists is found: absent means no row of that symbol at that time
    have = set(zip(data.symbol_code.tolist(), data.t.tolist(), strict=True))
    wanted = zip(data.symbol_code[i[~found]].tolist(), (data.t[:, None] - lags)[~found].tolist(), strict=True)
    assert not any(pair in have for pair in wanted)
    assert (~found).any()


def test_windows_zero_absent_steps_and_prep_sees_train_rows_only(small: ModelData) -> None:
    train, _, _ = splits(small)
    data = future_changed(small, int(small.t[train].max()) + 1)
    prep = fit_prep(data, train, text_dim=16, use_text=True)
    assert prep.projection is not None and prep.projection.k == 16 and prep.n_channels == 2 * 10 + 1
    np.testing.assert_array_equal(prep.center, fit_prep(small, train, 16, True).center)
    np.testing.assert_allclose(prep.center, np.nanmedian(data.x[train], axis=0), rtol=1e-6)
    rows = np.array([[-1, 5, -1, 7]])
    win = prep.windows(data.x, rows)
    assert win.shape == (1, 4, prep.n_channels) and win.dtype == np.float32
    assert not win[0, [0, 2]].any() and (win[0, [1, 3], -1] == 1).all() and np.isfinite(win).all()
    assert (win[0, 1, 10:20] == np.isnan(data.x[5, prep.base_cols[prep.missing_cols]])).all()
    pooled = fit_prep(data, train, 16, True, aggregate_missing=True)
    assert pooled.n_channels == 10 + 1 + 1
    assert pooled.windows(data.x, rows)[0, 1, 10] == np.float32(
        np.isnan(data.x[5, pooled.base_cols[pooled.missing_cols]]).mean()
    )


@pytest.mark.parametrize("name", TORCH)
def test_future_change_does_not_move_earlier_predictions(name: str, small: ModelData, fitted: dict) -> None:
    model, _ = fitted[name]
    cut = int(np.quantile(small.t, 0.5))
    earlier = np.flatnonzero(small.t < cut)
    changed = future_changed(small, cut)
    before, after = as_arrays(model.predict(small, earlier)), as_arrays(model.predict(changed, earlier))
    for key, arr in before.items():
        np.testing.assert_array_equal(arr, after[key], err_msg=f"{name}: {key} moved with a future-only change")
    later = np.flatnonzero(small.t >= cut)
    assert not np.array_equal(model.predict(small, later)["1h"].y_base, model.predict(changed, later)["1h"].y_base)


def test_fit_ignores_rows_after_the_train_window(small: ModelData) -> None:
    train, test, inner = splits(small)
    changed = future_changed(small, int(small.t[train].max()) + 1)
    a = make("tsmixer").fit(small, train, inner)
    b = make("tsmixer").fit(changed, train, inner)
    pa, pb = as_arrays(a.predict(small, train)), as_arrays(b.predict(changed, train))
    for key, arr in pa.items():
        np.testing.assert_array_equal(arr, pb[key], err_msg=f"train-row prediction {key} depends on later rows")


def test_same_seed_is_bit_identical_and_another_seed_differs(small: ModelData, fitted: dict) -> None:
    model, test = fitted["tsmixer"]
    again, _ = fit("tsmixer", small)
    first, second = as_arrays(model.predict(small, test)), as_arrays(again.predict(small, test))
    for key, arr in first.items():
        np.testing.assert_array_equal(arr, second[key], err_msg=f"not deterministic at {key}")
    other, _ = fit("tsmixer", small, random_seed=8)
    assert not np.array_equal(other.predict(small, test)["1h"].y_base, first[("1h", "y_base")])


@pytest.mark.parametrize("name", TORCH)
def test_pickle_round_trip_predicts_the_same(name: str, small: ModelData, fitted: dict) -> None:
    model, test = fitted[name]
    blob = pickle.dumps(model)
    assert b"Trainer" not in blob and b"DataLoader" not in blob
    loaded = pickle.loads(blob)
    assert loaded.get_params() == model.get_params()
    want, got = as_arrays(model.predict(small, test)), as_arrays(loaded.predict(small, test))
    for key, arr in want.items():
        np.testing.assert_array_equal(arr, got[key], err_msg=f"{name}: {key} changed after unpickling")


def test_preflight_reports_the_machine_and_rejects_what_is_missing() -> None:
    info = preflight()
    for key in ("torch", "cuda_available", "cuda_device_count", "cuda_devices", "mps_available", "cpu_threads"):
        assert key in info
    assert info["torch"] == torch.__version__ and info["devices"] >= 1
    with pytest.raises(ValueError, match="devices"):
        preflight(accelerator="cpu", devices=10_000)
    if torch.cuda.is_available():
        assert info["accelerator"] == "cuda"
        return
    assert info["accelerator"] == "cpu" and not info["cuda_available"] and info["cuda_devices"] == []
    with pytest.raises(ValueError, match="CUDA is not available"):
        preflight(accelerator="gpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        make("tsmixer", accelerator="gpu").fit(synthetic(0, n_t=50), np.arange(100), [])


def test_validation_curve_and_improvement_on_an_easy_signal(small: ModelData) -> None:
    rng = np.random.default_rng(1)
    signal = np.nan_to_num(small.x[:, :3]).sum(axis=1, keepdims=True)
    ret = np.where(small.label_ok, 1e-3 * (signal + 0.3 * rng.standard_normal(small.ret.shape)), np.nan)
    data = dataclasses.replace(small, ret=ret)
    model, test = fit("tsmixer", data)
    steps = [s for s, _ in model.val_curve_]
    assert steps == list(range(10, 61, 10)) and [s for s, _ in model.train_curve_] == steps
    assert model.improved_ and model.best_step_ in steps and model.best_steps_[0][0] == model.best_step_
    assert min(v for _, v in model.val_curve_) < 0.9 * model.val_curve_[0][1] < 0.9 * model.val_zero_loss_
    assert model.val_ret_skill_ > 0.5  # the return head itself learned the signal, not only the vol head
    assert model.steps_ == 60 + max(model.best_steps_[0]) and model.fit_seconds_ > 0
    assert model.devices_["accelerator"] in ("cpu", "cuda") and model.n_train_ == len(splits(data)[0])
    assert np.corrcoef(model.predict(data, test)["1h"].expected_return, data.ret[test, 0])[0, 1] > 0.8


def test_improved_means_beating_the_zero_forecast(small: ModelData) -> None:
    # a network that cannot move from its initialization never beats predicting 0 (standardized units)
    frozen, _ = fit("tsmixer", small, learning_rate=1e-12)
    assert frozen.val_zero_loss_ > 1.0 and not frozen.improved_ and frozen.val_ret_skill_ < 1e-3
    assert min(v for _, v in frozen.val_curve_) >= frozen.val_zero_loss_ * (1 - 1e-3)


@pytest.mark.parametrize("name", TORCH)
def test_no_text_retrains_the_same_base(small: ModelData, fitted: dict, name: str) -> None:
    """The text path fits the base's residual with the base's gradient stopped: ``no_text`` (the ablation's
    retraining without any text input) has a bit-identical ``y_base``, so ``full - no_text`` is the text alone."""
    from quantmm_assets.models.variants import variant_data

    full, test = fitted[name]
    plain_data = variant_data(small, "no_text")
    plain, _ = fit(name, plain_data)
    with_text, without = full.predict(small, test), plain.predict(plain_data, test)
    assert full.text_path_ and not plain.text_path_
    for h in small.horizons:
        np.testing.assert_array_equal(with_text[h].y_base, without[h].y_base, err_msg=f"{name} {h}")
        np.testing.assert_array_equal(with_text[h].vol_forecast, without[h].vol_forecast, err_msg=f"{name} {h}")
    assert any(with_text[h].text_contribution.any() for h in small.horizons) or not full.text_trust_.any()


def test_without_inner_splits_there_is_no_curve_and_no_calibration(small: ModelData) -> None:
    train, test, _ = splits(small)
    model = make("tsmixer", missing_indicators="aggregate").fit(small, train, [])
    assert model.val_curve_ == [] and len(model.train_curve_) == 6 and model.steps_ == 60
    pred = model.predict(small, test)
    assert all((p.signal_confidence == 0.5).all() for p in pred.values())
    kept = make("tsmixer", refit=False).fit(small, train, splits(small)[2])
    assert kept.steps_ == 60 and kept.val_curve_


def test_rows_without_text_degrade_to_the_base(small: ModelData) -> None:
    silent = dataclasses.replace(small, text=np.zeros_like(small.text), text_mask=np.zeros(small.n, bool))
    variants = [(silent, {}), (without_latents(small), {}), (small, {"fusion_mode": "none"})]
    for data, params in variants:
        model, test = fit("tsmixer", data, **params)
        assert not model.text_path_
        for p in model.predict(data, test).values():
            assert p.degraded.all() and not p.gate.any() and not p.text_contribution.any()
            np.testing.assert_array_equal(p.expected_return, p.y_base)


def test_noise_text_contributes_nothing_and_planted_text_does() -> None:
    contribution = {}
    for planted in (True, False):
        data = synthetic(0, text_signal=planted)
        model, test = fit("tsmixer", data)
        p, has = model.predict(data, test)["1h"], data.text_mask[test]
        contribution[planted] = p.text_contribution[has].std()
        if not planted:
            assert contribution[planted] <= 0.1 * p.y_base.std()
        else:
            assert model.text_trust_[0] > 0 and p.gate[has].mean() > 0.1
            gain = np.mean((data.ret[test, 0] - p.y_base) ** 2) - np.mean((data.ret[test, 0] - p.expected_return) ** 2)
            assert gain > 0, "the text path must reduce the 1h test error when text carries signal"
    assert contribution[True] >= 5 * contribution[False], contribution


def with_text_columns(data: ModelData) -> ModelData:
    """Return ``data`` with its last two flat features named as text flat columns (TEXT_FLAT_COLUMNS)."""
    names = (*data.feature_names[:-2], "sym_sentiment_1h", "post_n")
    assert set(names[-2:]) <= set(TEXT_FLAT_COLUMNS)
    return dataclasses.replace(data, feature_names=names)


def text_columns_changed(data: ModelData) -> ModelData:
    x = data.x.copy()
    x[:, -2:] = np.random.default_rng(5).standard_normal((data.n, 2)).astype(np.float32) * 3
    return dataclasses.replace(data, x=x)


def test_y_base_never_sees_the_text_flat_columns() -> None:
    data = with_text_columns(synthetic(0))
    changed = text_columns_changed(data)
    model, test = fit("tsmixer", data)
    base, text = base_and_text_columns(data.feature_names)
    assert model.text_path_ and model.text_trust_[0] > 0
    np.testing.assert_array_equal(model.prep_.base_cols, base)
    np.testing.assert_array_equal(model.prep_.text_cols, text)
    assert model.prep_.n_channels == len(base) + len(model.prep_.missing_cols) + 1
    before, after = model.predict(data, test), model.predict(changed, test)
    has = data.text_mask[test]
    for h in data.horizons:
        np.testing.assert_array_equal(before[h].y_base, after[h].y_base, err_msg=f"{h}: y_base saw text columns")
        np.testing.assert_array_equal(before[h].expected_return[~has], after[h].expected_return[~has])
        np.testing.assert_array_equal(after[h].gate[~has], 0.0)
    assert not np.allclose(before["1h"].expected_return[has], after["1h"].expected_return[has])
    # without a text path the text columns are used nowhere: fitting on changed ones gives the same model
    plain, _ = fit("tsmixer", without_latents(data))
    again, _ = fit("tsmixer", without_latents(changed))
    assert len(plain.prep_.text_cols) == 0
    want, got = as_arrays(plain.predict(data, test)), as_arrays(again.predict(changed, test))
    for key, arr in want.items():
        np.testing.assert_array_equal(arr, got[key], err_msg=f"no text path: {key} depends on the text columns")


def test_multi_model_meta_trains_one_network_per_horizon(small: ModelData) -> None:
    model, test = fit("tsmixer", small, mode="multi_model_meta")
    assert len(model.networks_) == len(small.horizons) and model.groups_ == [[0], [1], [2], [3]]
    assert len(model.meta_) == len(small.horizons) and all(m is not None for m in model.meta_)
    assert len(model.best_steps_) == len(small.horizons) and model.val_curve_
    pred = model.predict(small, test)
    assert all(np.isfinite(p.expected_return).all() and (p.vol_forecast > 0).all() for p in pred.values())
    assert np.corrcoef(pred["1h"].expected_return, small.ret[test, 0])[0, 1] > 0.3


def test_invalid_parameters_are_rejected_before_any_work(small: ModelData) -> None:
    train, _, inner = splits(small)
    bad = (
        {"fusion_mode": "late"},
        {"text_dim": 8},
        {"modality_dropout": 1.0},
        {"max_steps": 0},
        {"missing_indicators": 1},
    )
    for params in bad:
        with pytest.raises(ValueError, match="invalid"):
            make("tsmixer", **params).fit(small, train, inner)
    with pytest.raises(ValueError, match="divisible"):
        make("itransformer", hidden_size=15, n_heads=2).fit(small, train, inner)


def test_window_step_follows_the_row_spacing() -> None:
    from quantmm_assets.models.torch_windows import GRID_US, row_step_us

    hourly = np.repeat(np.arange(50, dtype=np.int64) * 12 * GRID_US, 2)
    codes = np.tile([0, 1], 50)
    assert row_step_us(hourly, codes) == 12 * GRID_US
    assert row_step_us(hourly // 12, codes) == GRID_US
    gappy = np.delete(np.arange(40, dtype=np.int64) * GRID_US, [5, 6, 20])  # a few missing bars
    assert row_step_us(gappy, np.zeros(len(gappy), np.int64)) == GRID_US
    assert row_step_us(np.zeros(1, np.int64), np.zeros(1, np.int64)) == GRID_US
