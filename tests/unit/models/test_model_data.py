"""``model_data``: the feature matrix joined to the wide labels, as arrays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.models.data import model_data

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DIM = 4


def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    ts = [T0 + timedelta(minutes=5 * i) for i in range(3)]
    matrix = pl.DataFrame(
        {
            "symbol": ["ETH", "BTC"] * 3,
            "ts_event": [t for t in ts for _ in range(2)],
            "symbol_code": pl.Series([1, 0] * 3, dtype=pl.Int16),
            "a": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "b": pl.Series([1, 0, 1, 0, 1, 0], dtype=pl.Int8),
            "post_latent": [[1.0] * DIM, None, None, None, None, [2.0] * DIM],
            "comment_latent": [None, None, [3.0] * DIM, None, None, [4.0] * DIM],
        },
        schema_overrides={"post_latent": pl.List(pl.Float32), "comment_latent": pl.List(pl.Float32)},
    )
    rows = []
    for sym in ("BTC", "ETH"):
        for i, t in enumerate(ts[:2]):  # no labels for the last time
            for h in ("1h", "4h"):
                funding = None if (sym, h) == ("BTC", "4h") else 0.0001 * (i + 1)  # unknown for BTC 4h
                rows.append((sym, t, h, t, 0.01 * i, 0.02, 0.001, funding, not (sym == "ETH" and h == "4h")))
    labels = pl.DataFrame(
        rows,
        schema=["symbol", "ts_event", "horizon", "ts_available", "ret", "rv", "cost", "funding", "complete"],
        orient="row",
    )
    return matrix, labels


def test_model_data_arrays() -> None:
    matrix, labels = frames()
    d = model_data(matrix, labels, ["symbol_code", "a", "b", "post_latent", "comment_latent"], horizons=("1h", "4h"))
    assert d.feature_names == ("symbol_code", "a", "b") and d.horizons == ("1h", "4h")
    assert d.x.dtype == np.float32 and d.x.shape == (6, 3) and d.text.shape == (6, 2 * DIM)
    np.testing.assert_array_equal(d.symbol_code, [0, 1, 0, 1, 0, 1])  # sorted by (t, symbol_code)
    assert np.all(np.diff(d.t) >= 0) and d.t[0] == int(T0.timestamp() * 1e6)
    np.testing.assert_array_equal(d.x[:, 1], np.array([np.nan, 1.0, 4.0, 3.0, 6.0, 5.0], np.float32))
    np.testing.assert_array_equal(d.text_mask, [False, True, False, True, True, False])
    np.testing.assert_array_equal(d.text[1], [1.0] * DIM + [0.0] * DIM)
    np.testing.assert_array_equal(d.text[4], [2.0] * DIM + [4.0] * DIM)
    np.testing.assert_array_equal(d.label_ok[:, 0], [True, True, True, True, False, False])
    np.testing.assert_array_equal(d.label_ok[:, 1], [True, False, True, False, False, False])
    assert np.isnan(d.ret[4:]).all() and d.ret[2, 0] == pytest.approx(0.01) and d.cost.dtype == np.float64
    # funding_h per horizon, NaN where unknown (BTC 4h) or where no label row exists (the last time)
    np.testing.assert_array_equal(d.funding[:, 0], [1e-4, 1e-4, 2e-4, 2e-4, np.nan, np.nan])
    np.testing.assert_array_equal(d.funding[:, 1], [np.nan, 1e-4, np.nan, 2e-4, np.nan, np.nan])


def test_model_data_errors() -> None:
    matrix, labels = frames()
    with pytest.raises(ValueError, match="missing columns"):
        model_data(matrix.drop("a"), labels, ["a"], horizons=("1h",))
    with pytest.raises(ValueError, match="missing columns"):
        model_data(matrix, labels.drop("complete"), ["a"], horizons=("1h",))
    with pytest.raises(ValueError, match=r"missing columns \['funding'\]"):
        model_data(matrix, labels.drop("funding"), ["a"], horizons=("1h",))
    with pytest.raises(ValueError, match="no rows for horizons"):
        model_data(matrix, labels, ["a"], horizons=("1h", "1d"))
    with pytest.raises(ValueError, match="duplicate"):
        model_data(pl.concat([matrix, matrix.head(1)]), labels, ["a"], horizons=("1h",))
