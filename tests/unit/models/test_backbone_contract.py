"""The backbone contract, parametrized over the registry, and the residual-gate fusion on a planted text signal."""

from __future__ import annotations

import numpy as np
import pytest

from quantmm_assets.models.data import ModelData
from quantmm_assets.models.flat_base import forget_base_fits
from quantmm_assets.models.protocol import Backbone, Predictions
from quantmm_assets.models.registry import BACKBONES
from quantmm_assets.models.variants import without_latents

HORIZONS = ("1h", "4h", "1d", "7d")
DIM = 32  # per latent tower (the real matrix has 384)
_TORCH_FAST = {
    "input_size": 4,
    "hidden_size": 16,
    "max_steps": 60,
    "batch_size": 64,
    "eval_every": 10,
    "learning_rate": 1e-2,
    "symbol_dim": 4,
    "num_threads": 1,
}
FAST = {
    "ridge": {},
    "lightgbm": {"max_steps": 40, "hidden_size": 8, "min_child_samples": 20, "learning_rate": 0.1},
    "tsmixer": {**_TORCH_FAST, "n_blocks": 1, "ff_dim": 16},
    "itransformer": {**_TORCH_FAST, "n_heads": 2, "n_layers": 1},
    "patchtst": {**_TORCH_FAST, "patch_len": 2, "stride": 2, "d_model": 16, "n_heads": 2, "n_layers": 1},
    "tft": {**_TORCH_FAST, "n_heads": 2},
}


def synthetic(seed: int, text_signal: bool = True, n_t: int = 600, n_sym: int = 2, f: int = 10) -> ModelData:
    """2 symbols x 600 rows: ``ret_1h`` = linear in ``x`` + (optionally) a signal seen only through the text."""
    rng = np.random.default_rng(seed)
    n = n_t * n_sym
    t = np.repeat(np.arange(n_t, dtype=np.int64) * 300_000_000, n_sym)
    code = np.tile(np.arange(n_sym), n_t)
    x = rng.standard_normal((n, f)).astype(np.float32)
    x[rng.random((n, f)) < 0.03] = np.nan
    w = np.linspace(1.0, -1.0, f)
    has = rng.random(n) < 0.6
    text = np.zeros((n, 2 * DIM), np.float32)
    text[has] = rng.standard_normal((has.sum(), 2 * DIM))
    v = rng.standard_normal(2 * DIM) / np.sqrt(2 * DIM)
    sig_x = np.nan_to_num(x) @ w / np.sqrt(f)
    sig_text = np.where(has, text @ v, 0.0) * 1.5 if text_signal else 0.0
    noise = rng.standard_normal((n, len(HORIZONS)))
    ret = 1e-3 * np.column_stack([sig_x + sig_text + noise[:, 0], 0.5 * sig_x + noise[:, 1], noise[:, 2], noise[:, 3]])
    rv = 1e-3 * np.exp(0.3 * rng.standard_normal((n, len(HORIZONS))) + 0.2 * np.abs(x[:, :1].astype(float)))
    rv = np.nan_to_num(rv, nan=1e-3)
    ok = np.ones((n, len(HORIZONS)), bool)
    ok[-40:, 3] = False  # the newest 7d labels are not known yet
    return ModelData(
        x=x,
        text=text,
        text_mask=has,
        ret=np.where(ok, ret, np.nan),
        rv=np.where(ok, rv, np.nan),
        cost=np.full((n, len(HORIZONS)), 2e-4),
        label_ok=ok,
        t=t,
        symbol_code=code,
        horizons=HORIZONS,
        feature_names=tuple(f"f{i}" for i in range(f)),
    )


def splits(data: ModelData, k: int = 3) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """First 80% of the times to train (k contiguous inner validation blocks), the rest to test."""
    cut = np.quantile(data.t, 0.8)
    train, test = np.flatnonzero(data.t < cut), np.flatnonzero(data.t >= cut)
    blocks = np.array_split(train, k)
    return train, test, [(np.setdiff1d(train, b), b) for b in blocks]


def fitted(name: str, data: ModelData, **params: object) -> tuple[Backbone, np.ndarray]:
    train, test, inner = splits(data)
    model = BACKBONES[name](random_seed=7, **FAST[name], **params)
    assert model.fit(data, train, inner) is model
    return model, test


def as_arrays(pred: dict[str, Predictions]) -> dict[tuple[str, str], np.ndarray]:
    return {(h, k): v for h, p in pred.items() for k, v in vars(p).items()}


@pytest.fixture(scope="module")
def data() -> ModelData:
    return synthetic(0)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_contract(name: str, data: ModelData) -> None:
    cls = BACKBONES[name]
    fresh = cls(random_seed=7, **FAST[name])
    params = fresh.get_params()
    assert set(vars(fresh)) == set(params), "__init__ must store parameters only"
    assert not [k for k in params if k.endswith("_")]
    for shared in ("input_size", "hidden_size", "learning_rate", "max_steps", "batch_size", "random_seed"):
        assert shared in params
    with pytest.raises(ValueError, match="unknown parameters"):
        cls(not_a_param=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.predict(data, np.arange(3))
    h = fresh.config_hash()
    assert len(h) == 12 and h == cls(**params).config_hash() != cls(**{**params, "random_seed": 8}).config_hash()

    model, test = fitted(name, data)
    learned = set(vars(model)) - set(params)
    assert learned and all(k.endswith("_") for k in learned), learned
    assert model.get_params() == params, "fit must not change parameters"
    pred = model.predict(data, test)
    assert tuple(pred) == HORIZONS
    has = data.text_mask[test]
    for p in pred.values():
        for arr in vars(p).values():
            assert arr.shape == (len(test),)
        assert np.isfinite(p.expected_return).all() and (p.vol_forecast > 0).all()
        assert ((p.signal_confidence >= 0) & (p.signal_confidence <= 1)).all()
        assert ((p.gate >= 0) & (p.gate <= 1)).all()
        np.testing.assert_array_equal(p.degraded, ~has)
        np.testing.assert_array_equal(p.expected_return[~has], p.y_base[~has])
        np.testing.assert_allclose(p.text_contribution, p.expected_return - p.y_base, atol=1e-15)
    assert np.abs(pred["1h"].text_contribution[has]).max() > 0
    ic = np.corrcoef(pred["1h"].expected_return, data.ret[test, 0])[0, 1]
    assert ic > 0.3, f"{name}: planted 1h signal not learned (IC {ic:.3f})"
    # calibrated confidence: more confident predictions are right more often
    conf, right = pred["1h"].signal_confidence, np.sign(pred["1h"].expected_return) == np.sign(data.ret[test, 0])
    assert right[conf >= np.median(conf)].mean() > right[conf < np.median(conf)].mean()

    forget_base_fits()  # a flat backbone would reuse its base fit: refit from nothing
    again = as_arrays(fitted(name, data)[0].predict(data, test))
    for key, arr in as_arrays(pred).items():
        np.testing.assert_array_equal(arr, again[key], err_msg=f"{name}: not deterministic at {key}")

    # text is on when the data carries it: fitted on the same rows without latents, there is no text stage
    assert data.has_text and not without_latents(data).has_text
    plain = fitted(name, without_latents(data))[0].predict(data, test)
    for p in plain.values():
        assert not p.text_contribution.any() and not p.gate.any() and p.degraded.all()
        np.testing.assert_array_equal(p.expected_return, p.y_base)

    meta, _ = fitted(name, data, mode="multi_model_meta")
    assert meta.meta_ is not None and len(meta.meta_) == len(HORIZONS)
    mpred = meta.predict(data, test)
    assert all(np.isfinite(p.expected_return).all() for p in mpred.values())
    assert np.corrcoef(mpred["1h"].expected_return, data.ret[test, 0])[0, 1] > 0.3
    iso = fitted(name, data, calibration="isotonic")[0].predict(data, test)["1h"].signal_confidence
    assert ((iso >= 0) & (iso <= 1)).all()
    with pytest.raises(ValueError, match="mode"):
        cls(mode="bogus").fit(data, *splits(data)[::2])


@pytest.mark.parametrize("name", ["ridge", "lightgbm"])
def test_a_flat_base_is_fitted_once_for_the_same_rows_and_settings(name: str, data: ModelData) -> None:
    forget_base_fits()
    full = fitted(name, data)[0]
    ablation = fitted(name, without_latents(data))[0]  # no_text: the base reads the same rows and columns
    assert [id(m) for _, m in ablation.base_] == [id(m) for _, m in full.base_]
    other = fitted(name, data, calibration="isotonic")[0]  # other settings (any of them): its own fit
    assert not {id(m) for _, m in other.base_} & {id(m) for _, m in full.base_}
    train, _, inner = splits(data)
    drop = train[-1]
    fewer = BACKBONES[name](random_seed=7, **FAST[name])
    fewer.fit(data, train[:-1], [(a[a != drop], b[b != drop]) for a, b in inner])
    assert not {id(m) for _, m in fewer.base_} & {id(m) for _, m in full.base_}  # other rows: their own fit


@pytest.mark.parametrize("seed", [0, 1])
def test_fusion_picks_up_text_signal(seed: int) -> None:
    stds = {}
    for planted in (True, False):
        d = synthetic(seed, text_signal=planted)
        model, test = fitted("ridge", d)
        pred = model.predict(d, test)
        p, has = pred["1h"], d.text_mask[test]
        stds[planted] = p.text_contribution[has].std()
        # the gate opens where the text carries signal (observed mean >= 0.86) and stays shut elsewhere (<= 0.01)
        assert (p.gate[has].mean() > 0.5) == planted, p.gate[has].mean()
        assert p.gate[has].mean() > 0.5 or p.gate[has].mean() < 0.1
        assert pred["4h"].gate[has].mean() < 0.1
        if planted:
            gain = np.mean((d.ret[test, 0] - p.y_base) ** 2) - np.mean((d.ret[test, 0] - p.expected_return) ** 2)
            assert gain > 0, "the text stage must reduce the 1h test error when text carries signal"
    assert stds[True] >= 10 * stds[False], stds  # observed >= 38x over seeds 0..3
