"""What a training run may read and what it records about it: only data that passed, and its full lineage.

:func:`vouched_inputs` applies the ``unvouched_partitions`` policy to the partition lineage
(:mod:`quantmm_resources.instance_lineage`) of the matrix, the labels and the folds: ``refuse`` raises naming every
partition no passing run vouches for and why; ``exclude`` trains on the vouched date x symbol partitions only
(a key is read when both its matrix and its labels are vouched) and records which were left out. The folds are
one unpartitioned asset: when they are not vouched, training is refused under either policy.

:func:`lineage_document` is the JSON that goes on every training run and every registered version (its hash as a
tag): code version, config hashes, cost and signal configs, feature contract, text encoder, fold spec, window,
backbone, mode, fusion mode, and the partitions read with their data versions and the runs that vouch for them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import dagster as dg

from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.defs.matrix_assets import LabelConfig, feature_matrix_main, labels_multi_horizon, walk_forward_folds
from quantmm_resources.instance_lineage import PartitionVouch, partition_lineage, unvouched_message
from quantmm_resources.lake import LakeLayout
from quantmm_resources.provenance import canonical_hash, code_version

POLICIES = ("refuse", "exclude")


class UnvouchedInputs(ValueError):
    """Training refused: some partition it would read is not vouched for by a passing run."""


@dataclass(frozen=True)
class VouchedInputs:
    """The partitions a training run reads and the lineage behind them."""

    partitions: list[str]  # date x symbol keys read (matrix and labels)
    excluded: list[str]  # keys left out under ``exclude``
    vouches: list[PartitionVouch]  # matrix, labels and folds

    def compared(self) -> dict[str, int]:
        """Rows compared per (asset, check) over the distinct runs that vouch for what was read."""
        seen: dict[tuple[str, str, str], int] = {}
        read = set(self.partitions)
        for v in self.vouches:
            if v.run_id is None or (v.partition is not None and v.partition not in read):
                continue
            for check, verdict in v.checks.items():
                seen[(v.asset, check, v.run_id)] = verdict.compared
        totals: Counter[str] = Counter()
        for (asset, check, _), n in seen.items():
            totals[f"{asset}.{check}"] += n
        return dict(totals)


def vouched_inputs(instance: dg.DagsterInstance, lake: LakeLayout, policy: str = "refuse") -> VouchedInputs:
    """Return the partitions to train on under ``policy`` (see the module docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"unvouched_partitions must be one of {POLICIES}, got {policy!r}")
    matrix_keys = lake.partition_keys("feature_matrix_main")
    label_keys = lake.partition_keys("labels_multi_horizon")
    if not matrix_keys or not label_keys:
        raise ValueError("training needs feature_matrix_main and labels_multi_horizon in the lake: quantmm features")
    matrix = partition_lineage(instance, feature_matrix_main, matrix_keys)
    labels = partition_lineage(instance, labels_multi_horizon, label_keys)
    folds = partition_lineage(instance, walk_forward_folds, None)
    vouches = [*matrix, *labels, *folds]
    if not folds[0].vouched:
        raise UnvouchedInputs(
            "training refused: the walk-forward folds are not vouched for by a passing run:\n"
            + unvouched_message(folds)
            + "\nre-materialize walk_forward_folds (quantmm features) and look at its fold_hygiene check"
        )
    good = {v.partition for v in matrix if v.vouched} & {v.partition for v in labels if v.vouched}
    both = sorted(set(matrix_keys) & set(label_keys))
    bad = [v for v in [*matrix, *labels] if not v.vouched and v.partition in set(both)]
    if bad and policy == "refuse":
        raise UnvouchedInputs(
            f"training refused: {len(bad)} partition(s) it would read are not vouched for by a run whose blocking "
            f"checks passed:\n{unvouched_message(bad)}\nre-materialize them (quantmm features --start/--end) or "
            "train with unvouched_partitions='exclude' to leave them out"
        )
    kept = [k for k in both if k in good]
    if not kept:
        why = unvouched_message(bad)
        raise UnvouchedInputs(f"training refused: no partition is vouched for by a passing run:\n{why}")
    return VouchedInputs(kept, [k for k in both if k not in good], vouches)


def label_cost_configs(instance: dg.DagsterInstance, vouches: list[PartitionVouch]) -> list[dict[str, Any]]:
    """The distinct cost configurations of the runs that materialized the labels read (from their run config)."""
    runs = sorted({v.run_id for v in vouches if v.asset == labels_multi_horizon.key.to_user_string() and v.run_id})
    configs: dict[str, dict[str, Any]] = {}
    for run_id in runs:
        run = instance.get_run_by_id(run_id)
        ops = (run.run_config or {}).get("ops", {}) if run else {}
        given = ops.get("labels_multi_horizon", {}).get("config", {})
        cost = LabelConfig(**given).cost().as_params()
        configs[canonical_hash(cost)] = cost
    return [configs[k] for k in sorted(configs)]


def lineage_document(
    *,
    backbone: str,
    train_config: dict[str, Any],
    model_params: dict[str, Any],
    signal: SignalConfig,
    contract_version: str,
    text_encoder: str,
    fold_spec: dict[str, Any],
    fold_spec_hash: str,
    window: dict[str, str],
    inputs: VouchedInputs,
    cost_configs: list[dict[str, Any]],
) -> dict[str, Any]:
    """The lineage of one training run (JSON-able)."""
    read = set(inputs.partitions)
    partitions = [
        {"asset": v.asset, "partition": v.partition, "data_version": v.data_version, "run_id": v.run_id}
        for v in inputs.vouches
        if v.partition is None or v.partition in read
    ]
    return {
        **code_version(),
        "backbone": backbone,
        "config_hash": canonical_hash({"train": train_config, "model": model_params}),
        "model_params": model_params,
        "mode": model_params.get("mode"),
        "fusion_mode": model_params.get("fusion_mode"),
        "train_config": train_config,
        "cost_configs": cost_configs,
        "signal_config": signal.record(),
        "feature_contract_version": contract_version,
        "text_encoder": text_encoder,
        "fold_spec": fold_spec,
        "fold_spec_hash": fold_spec_hash,
        "window": window,
        "partitions_read": len(inputs.partitions),
        "partitions_excluded": inputs.excluded,
        "checks_compared": inputs.compared(),
        "partitions": partitions,
    }
