"""Jobs of the model layer: training (the retraining sensors target it) and promotion (from the UI)."""

import dagster as dg

from quantmm_resources.opstore import OperationalStore
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.registry.gated_promotion import promote_candidate

# The assets one training run materializes, in one place: the candidate assets join here (one edit).
TRAIN_ASSETS = ("trained_backbones", "backbone_report")

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets(*TRAIN_ASSETS),
    description="Train one backbone (a trained_backbones partition) through the walk-forward protocol, then rank "
    "every materialized backbone in backbone_report. The retraining sensors request one run per backbone.",
    tags={"quantmm/layer": "models"},
)

candidates_job = dg.define_asset_job(
    "candidates_job",
    selection=dg.AssetSelection.assets("candidate_models"),
    description="Register and gate the candidate of one symbol x horizon (candidate_models partition); the "
    "fine-tune sensor requests it once an attempt has trained.",
    tags={"quantmm/layer": "registry"},
)


class PromoteConfig(dg.Config):
    """Who promotes which candidate and why (the ledger records it)."""

    symbol: str
    horizon: str
    operator: str
    reason: str
    version: str = ""  # the version meant (refused unless it is the one the gates passed); empty: the gated one


@dg.op(pool="quantmm_models", description="The one gated promotion function (refuses unless every gate passed).")
def promote_candidate_op(
    context: dg.OpExecutionContext, config: PromoteConfig, registry: ModelRegistry, opstore: OperationalStore
) -> None:
    done = promote_candidate(
        context.instance,
        registry,
        opstore.url,
        config.symbol,
        config.horizon,
        config.operator,
        config.reason,
        config.version or None,
    )
    context.log.info(f"promoted {done['model']}: active v{done['from'] or '-'} -> v{done['to']}")


@dg.job(description="Promote the gated candidate of one symbol x horizon from the UI (launchpad: the op config).")
def promote_job() -> None:
    promote_candidate_op()


readiness_job = dg.define_asset_job(
    "readiness_job",
    selection=dg.AssetSelection.assets("readiness_audit"),
    description="The readiness audit: coverage of each data kind, missing kinds and the backfills that fill them.",
)
daily_readiness = dg.ScheduleDefinition(
    name="daily_readiness",
    cron_schedule="15 0 * * *",
    job=readiness_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="The readiness audit once a day, after midnight UTC (yesterday's partitions are complete).",
)
MODEL_SCHEDULES = [daily_readiness]
MODEL_JOBS = [train_job, candidates_job, promote_job, readiness_job]
