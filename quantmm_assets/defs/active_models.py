"""``active_models`` (symbol x horizon): the optional automation that promotes a candidate once its gates passed.

Off by default. With ``QUANTMM_AUTO_PROMOTE=true`` it carries Dagster's declarative automation condition (the
candidate was updated and every blocking check of it passed), so the daemon materializes it, which promotes through
the one gated promotion function (operator ``automation``). Materialized by hand, it does the same and refuses, as a
failed step naming the gates, when they did not pass. No path leads to live trading.
"""

import dagster as dg

from quantmm_assets.defs.candidate_assets import candidate_models, candidate_partitions, frozen_baseline
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.registry.gated_promotion import gate_status, promote_candidate
from quantmm_resources.registry.promotion import current_active
from quantmm_resources.settings import get_settings

AUTOMATION_OPERATOR = "automation"


def _condition() -> dg.AutomationCondition | None:
    if not get_settings().auto_promote:
        return None
    return dg.AutomationCondition.any_deps_updated() & dg.AutomationCondition.all_deps_blocking_checks_passed()


@dg.asset(
    partitions_def=candidate_partitions,
    group_name="registry",
    deps=[candidate_models],
    kinds={"mlflow"},
    pool="quantmm_models",
    automation_condition=_condition(),
    description="Promotes the gated candidate of each symbol x horizon to the active alias (the promotion ledger "
    "records it); automatic only with QUANTMM_AUTO_PROMOTE=true, otherwise on demand.",
)
def active_models(
    context: dg.AssetExecutionContext, registry: ModelRegistry, opstore: OperationalStore
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    symbol, horizon = keys["symbol"], keys["horizon"]
    status = gate_status(context.instance, symbol, horizon)
    active = current_active(opstore.url, status.model_name)
    if status.version is not None and active == status.version:
        return dg.MaterializeResult(metadata={"model": status.model_name, "active": active, "moved": False})
    done = promote_candidate(
        context.instance,
        registry,
        opstore.url,
        symbol,
        horizon,
        AUTOMATION_OPERATOR,
        f"every blocking gate of v{status.version} passed (run {str(status.run_id)[:8]})",
    )
    context.log.info(f"{done['model']}: active v{done['from'] or '-'} -> v{done['to']}")
    return dg.MaterializeResult(
        metadata={"model": done["model"], "active": done["to"], "from": str(done["from"]), "moved": True}
    )


CANDIDATE_ASSETS = [frozen_baseline, candidate_models, active_models]
