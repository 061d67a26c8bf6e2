"""The paper-trading loop as a Dagster job on a schedule: one live step per new 5-minute bar (stopped by default).

Each run steps once on the newest complete bar of the lake with the active versions (``quantmm paper live`` does
the same from the command line); a bar stepped already is not stepped again, the kill switch (``quantmm paper
kill``, ``POST /paper/kill``), stale data and a stale model halt the step.
"""

import dagster as dg

from quantmm_resources.settings import get_settings
from quantmm_serving.paper.run import run_live_step


@dg.op(description="One live paper-trading step on the newest complete bar (fills, funding, marks, decision).")
def paper_step_op(context: dg.OpExecutionContext) -> None:
    done = run_live_step(get_settings())
    context.log.info(f"paper step: {done}")
    if str(done.get("status", "")).startswith("halted"):
        context.log.warning(f"paper loop halted: {done['status']}")


@dg.job(description="One live step of the paper-trading loop (the schedule runs it every 5 minutes).")
def paper_job() -> None:
    paper_step_op()


paper_schedule = dg.ScheduleDefinition(
    name="paper_every_5_minutes",
    cron_schedule="1-59/5 * * * *",  # a minute after each bar closes, once the feature refresh has landed it
    job=paper_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="The paper loop's live clock: one step per 5-minute bar.",
)
PAPER_JOBS = [paper_job]
PAPER_SCHEDULES = [paper_schedule]
