"""The feature contract: ordered names and dtypes with a version that changes with them; conform() refuses
frames that do not match; build_feature_rows (what serving will call) follows it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest
from raw_sample import START, SYMBOLS, synthetic_raw

from quantmm_assets.core.features.matrix import KEY_COLUMNS, build_feature_rows, feature_contract
from quantmm_resources.text_encoder import hashing_embed


def test_version_changes_with_names_dtypes_and_code_version():
    base = feature_contract(384)
    assert base.version == feature_contract(384).version
    assert feature_contract(64).version != base.version  # latent width is part of the dtypes
    assert replace(base, names=base.names[::-1]).version != base.version
    assert replace(base, code_version="x").version != base.version


def test_build_feature_rows_follows_the_contract_and_conform_refuses_drift():
    contract = feature_contract(384)
    day = START + timedelta(days=11)
    rows = build_feature_rows(
        synthetic_raw(), list(SYMBOLS), day, day + timedelta(hours=2), lambda t, h: hashing_embed(t, 384), 384
    )
    assert rows.columns == [*KEY_COLUMNS, *contract.names]
    assert len(rows) == 2 * 24  # two symbols, 2 hours of 5m rows
    assert rows["symbol_code"].to_list() == [0] * 24 + [1] * 24
    with pytest.raises(ValueError, match="missing columns"):
        contract.conform(rows.drop("ret_1h"))
    with pytest.raises(ValueError, match="wrong dtypes"):
        contract.conform(rows.with_columns(pl.col("funding_missing").cast(pl.Float64)))
