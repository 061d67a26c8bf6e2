"""LabelConfig: the Dagster config of labels_multi_horizon is CostConfig's fields, names and defaults."""

from __future__ import annotations

import dataclasses

import dagster as dg
import pytest

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.defs.matrix_assets import LabelConfig, labels_multi_horizon

# the run-config keys operators write; renaming a CostConfig field breaks their run configs
RUN_CONFIG_KEYS = ("fee_bps", "slippage_bps", "impact_coef", "turnover_coef", "horizon_coef_bps_per_day")


def _schema_fields() -> dict[str, dg.Field]:
    return dict(labels_multi_horizon.op.config_schema.as_field().config_type.fields)


def test_label_config_schema_is_cost_config_fields_with_their_defaults():
    fields = _schema_fields()
    assert tuple(fields) == RUN_CONFIG_KEYS == tuple(f.name for f in dataclasses.fields(CostConfig))
    for f in dataclasses.fields(CostConfig):
        assert not fields[f.name].is_required and fields[f.name].default_value == f.default, f.name
    assert LabelConfig().cost() == CostConfig()


def test_label_config_run_values_reach_the_cost_model():
    cfg = LabelConfig(fee_bps=2.0, horizon_coef_bps_per_day=3.0)
    assert cfg.cost() == CostConfig(fee_bps=2.0, horizon_coef_bps_per_day=3.0)
    with pytest.raises(ValueError, match="fee_bps"):
        LabelConfig(fee_bps=-1.0).cost()
