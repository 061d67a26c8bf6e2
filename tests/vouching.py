"""Vouch for partitions written straight into a test lake: runless materializations and passing check results.

Training reads only partitions a run with passing blocking checks vouches for (``defs.training_lineage``). Model
tests write the synthetic matrix and labels into the lake directly instead of running the feature layer, so they
report what a passing feature run would have: one materialization per partition and one passing result per blocking
check, all runless (Dagster's ``report_runless_asset_event``, the API for data materialized outside a run).
"""

from __future__ import annotations

import dagster as dg

from quantmm_assets.defs.matrix_assets import feature_matrix_main, labels_multi_horizon
from quantmm_resources.instance_lineage import blocking_checks
from quantmm_resources.lake import LakeLayout

COMPARED = 40


def vouch(instance: dg.DagsterInstance, lake: LakeLayout, passed: bool = True) -> None:
    """Report the lake's matrix and label partitions as materialized, with every blocking check ``passed``."""
    for asset in (feature_matrix_main, labels_multi_horizon):
        for key in lake.partition_keys(asset.key.to_user_string()):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset.key, partition=key))
        for check in blocking_checks(asset):
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=asset.key, check_name=check, passed=passed, metadata={"compared": COMPARED}
                )
            )
