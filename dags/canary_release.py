"""
## Promote or abort an agent's canary

One DAG per agent spec. An agent whose spec sets `release.mode: canary` gets a
model that passed the nightly offline gate as a **canary** first: the manifest's
canary slot, serving `release.share` of the agent's routing keys beside the
champion. This DAG runs after each day's logs land, on the agent's schedule
(with no canary in the manifest a run only says so), and:

1. **wait_for_logs**: waits for the day's `_SUCCESS` marker (not when the
   operator promotes or aborts from the trigger form);
2. **judge**: reads the agent's logs from the canary's first day up to the
   run's day (from the validated days; a day the data gate refused is left out
   and named) and compares the arms on-policy: each arm's mean reward and the
   canary-minus-champion difference with a 95% interval, and beside it each
   arm's model valued off-policy (SNIPS) on every event. Every verdict is kept
   in `<agent>/canary/<version>/dt=<day>/` in the artifacts bucket;
3. **act** (branch): **promote** when both arms have `min_events_per_arm`
   events and the interval's lower bound is above `-margin`; **abort** when
   its upper bound is below `-margin` (the canary is worse) or `max_days` of
   logs gave no verdict; otherwise **keep_waiting**.

Trigger form: `promote_now` or `abort_now`, with a `reason`; both are recorded
in the manifest's `canary_history`. Backfill runs judge and record, never act.
Promote and abort are compare-and-swaps of the manifest: if the canary or the
champion changed since the verdict (a rollback clears the canary), they refuse.
"""

from __future__ import annotations

import logging

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from agent_retraining.spec import AgentSpec, load_all_specs
from retraining_runtime import ANY_DAY, S3_RETRIES, DayLogsSensor, manifest_asset

log = logging.getLogger(__name__)
OPERATOR_PARAMS = ("promote_now", "abort_now")


def build_canary_dag(spec: AgentSpec):
    @dag(
        dag_id=spec.canary_dag_id,
        auto_register=False,  # registered by the loop at the bottom, so a DAG that fails half-built never is
        description=f"Promote or abort the canary of {spec.agent_id} from its live logs",
        doc_md=__doc__,
        schedule=CronDataIntervalTimetable(spec.schedule, timezone="UTC"),  # each run owns a day, as retraining's
        start_date=ANY_DAY,
        catchup=False,
        max_active_runs=1,
        tags=["retraining", "canary", f"agent:{spec.agent_id}"],
        access_control=spec.access_control,  # the teams the spec names, as FAB DAG-level permissions
        default_args={"owner": spec.owner, **S3_RETRIES},
        params={
            "promote_now": Param(
                False,
                type="boolean",
                title="Promote now",
                description="Make the canary the live model now, whatever its numbers say.",
            ),
            "abort_now": Param(
                False,
                type="boolean",
                title="Abort now",
                description="Empty the canary slot now: the champion serves every request again.",
            ),
            "reason": Param(
                "",
                type="string",
                title="Reason",
                description="Why you promote or abort by hand; kept in the manifest's canary history.",
            ),
        },
    )
    def canary_release():
        @task(multiple_outputs=False)
        def judge(params=None, data_interval_start=None, dag_run=None) -> dict:
            from agent_retraining.release.canary_verdict import NoCanary, OperatorOverride, judge_canary
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import final, run_day, s3_client

            records_only = "backfill" if getattr(dag_run.run_type, "value", dag_run.run_type) == "backfill" else None
            with final(ValueError):  # the form asked for something impossible: no retry will change that
                override = OperatorOverride(params["promote_now"], params["abort_now"], params["reason"])
            s3, buckets, day = s3_client(), buckets_from_env(), run_day(data_interval_start)
            with final(NoCanary):
                record = judge_canary(s3, buckets, spec, day, dag_run.run_id, override, records_only)
            log.info("%s: %s", record["verdict"], record["reason"])
            canary = record.get("canary") or {}
            judged = {"champion": record.get("champion"), "canary": canary.get("version"),
                      "started_at": canary.get("started_at")}  # fmt: skip
            return {k: record[k] for k in ("verdict", "acts", "reason")} | {"judged": judged}

        @task.branch
        def act(verdict: dict) -> str:
            return verdict["verdict"] if verdict["acts"] else "keep_waiting"

        moves_manifest = [manifest_asset(spec.agent_id)]

        def end_canary(how: str, verdict: dict, run_id: str, outlet_events) -> dict:
            """Promote or abort by compare-and-swap; a canary or champion changed since the verdict is final."""
            from agent_retraining.release import deploy
            from agent_retraining.storage import buckets_from_env
            from agent_retraining.tracking.mirror import mirror_aliases
            from retraining_runtime import final, manifest_event, s3_client

            change = deploy.promote_canary if how == "promote" else deploy.abort_canary
            with final(deploy.CanaryChanged):
                result = change(s3_client(), buckets_from_env(), spec.agent_id, verdict["judged"], verdict["reason"],
                                run_id)  # fmt: skip
            log.info("%s %s: %s", how, verdict["judged"]["canary"], result)
            outcome = "canary_promoted" if how == "promote" else "canary_aborted"
            outlet_events[moves_manifest[0]].extra = manifest_event(spec.agent_id, outcome, result, run_id)
            mirror_aliases(s3_client(), buckets_from_env(), spec.agent_id)
            return result

        @task(multiple_outputs=False, outlets=moves_manifest)
        def promote(verdict: dict, run_id=None, outlet_events=None) -> dict:
            return end_canary("promote", verdict, run_id, outlet_events)

        @task(multiple_outputs=False, outlets=moves_manifest)
        def abort(verdict: dict, run_id=None, outlet_events=None) -> dict:
            return end_canary("abort", verdict, run_id, outlet_events)

        @task
        def keep_waiting(verdict: dict) -> str:
            return verdict["reason"]

        verdict = judge()
        DayLogsSensor(task_id="wait_for_logs", spec=spec, operator_params=OPERATOR_PARAMS) >> verdict
        act(verdict) >> [promote(verdict), abort(verdict), keep_waiting(verdict)]

    return canary_release()


for _spec in load_all_specs()[0]:
    try:
        globals()[_spec.canary_dag_id] = build_canary_dag(_spec)
    except Exception:  # noqa: BLE001 - one agent's DAG that cannot be built must not hide the others'
        log.exception("canary DAG of %s not built; its retraining DAG shows why", _spec.agent_id)
