"""
## Nightly retraining of an agent's reward model

One DAG per agent spec in `include/agents/<agent_id>.yaml`. Each run owns one
day of the agent's logs (its data interval, midnight to midnight UTC) and:

1. **snapshot**: freezes the training window's logs from S3 into one Parquet file
   (every source object's key and ETag recorded);
2. **validate**: runs the Great Expectations suite generated from the spec; a
   violation fails the run here, so nothing is trained on bad data;
3. **build_features**: time-based split, the newest day(s) held out;
4. **train**: one mapped task per candidate (scikit-learn, LightGBM, PyTorch);
5. **evaluate**: every candidate and the live model on the same holdout rows,
   then the gate of the spec;
6. **choose** (branch): **deploy** (artifact written once, manifest swapped by
   compare-and-swap) or **skip_deploy**; when the spec asks for approval, an
   operator approves the deploy in the UI first (no answer in time: keep);
7. **report**: always runs and writes `report.json` next to the run's artifacts.

Tasks hand data to each other through S3 (the `agent_s3` connection); XCom
carries only object keys and small summaries. The run fails (red) when any stage
failed, including data refused by the gate.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, TriggerRule, dag, task

from agent_retraining.spec import AgentSpec, load_all_specs

S3_RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}


def build_retraining_dag(spec: AgentSpec):
    @dag(
        dag_id=spec.dag_id,
        description=f"Nightly retraining of {spec.agent_id}: {spec.description}",
        doc_md=__doc__,
        schedule=CronDataIntervalTimetable(spec.schedule, timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["retraining", f"agent:{spec.agent_id}"],
        default_args={"owner": spec.owner, **S3_RETRIES},
        params={
            "allow_older_than_live": Param(
                False,
                type="boolean",
                title="Allow replacing a model trained on newer data",
                description="Manual runs only, and logged in the decision: waive the rule that a deploy must not "
                "replace a live model trained on newer data than this run's.",
            ),
        },
    )
    def retraining():
        @task(multiple_outputs=False)
        def snapshot(data_interval_start=None) -> dict:
            from agent_retraining.reporting import clear_run
            from agent_retraining.snapshot import Window, take_snapshot
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import run_day, s3_client

            s3, buckets, window = s3_client(), buckets_from_env(), Window.ending(run_day(data_interval_start), spec)
            clear_run(s3, buckets, spec, window)
            record = take_snapshot(s3, buckets, spec, window)
            return {"snapshot_key": record["snapshot_key"], "rows": record["rows"], "faults": len(record["faults"])}

        @task(retries=0)
        def validate(snap: dict, data_interval_start=None) -> str:
            from airflow.sdk.exceptions import AirflowFailException

            from agent_retraining.contract import run_prefix
            from agent_retraining.snapshot import Window
            from agent_retraining.storage import buckets_from_env
            from agent_retraining.validation import DataRejected, validate_snapshot
            from retraining_runtime import run_day, s3_client

            window = Window.ending(run_day(data_interval_start), spec)
            record_key = run_prefix(spec.agent_id, window.last) + "snapshot.json"
            try:
                result = validate_snapshot(s3_client(), buckets_from_env(), spec, window, record_key)
            except DataRejected as exc:
                raise AirflowFailException(f"data gate refused the logs: {exc}") from exc
            for warning in result["warnings"]:
                print(f"data gate warning: {warning}")
            return snap["snapshot_key"]

        @task(multiple_outputs=False)
        def build_features(snapshot_key: str, data_interval_start=None) -> dict:
            from agent_retraining.features import build_split
            from agent_retraining.snapshot import Window
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import run_day, s3_client

            window = Window.ending(run_day(data_interval_start), spec)
            return build_split(s3_client(), buckets_from_env(), spec, window, snapshot_key)

        @task(multiple_outputs=False, map_index_template="{{ task.op_kwargs['candidate'] }}")
        def train(candidate: str, split: dict, data_interval_start=None) -> dict:
            from agent_retraining.snapshot import Window
            from agent_retraining.storage import buckets_from_env
            from agent_retraining.training import train_candidate
            from retraining_runtime import run_day, s3_client

            window = Window.ending(run_day(data_interval_start), spec)
            return train_candidate(s3_client(), buckets_from_env(), spec, window, candidate, split["train_key"])

        @task(multiple_outputs=False)
        def evaluate(split: dict, candidates: list[dict], data_interval_start=None, dag_run=None, params=None) -> dict:
            from agent_retraining.evaluation import RunContext, evaluate_and_decide
            from agent_retraining.snapshot import Window
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import run_day, s3_client

            window = Window.ending(run_day(data_interval_start), spec)
            run = RunContext(str(dag_run.run_type), params["allow_older_than_live"])
            decision = evaluate_and_decide(
                s3_client(), buckets_from_env(), spec, window, split["holdout_key"], list(candidates), run
            )
            return {
                "deploy": decision["deploy"],
                "winner": decision["winner"]["candidate"],
                "reason": decision["reason"],
            }

        @task.branch
        def choose(decision: dict) -> str:
            print(decision["reason"])
            return "deploy" if decision["deploy"] else "skip_deploy"

        @task(multiple_outputs=False, outlets=[Asset(name=f"{spec.agent_id}_model_manifest")])
        def deploy(data_interval_start=None, run_id=None) -> dict:
            from agent_retraining.manifest import deploy_run
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import run_day, s3_client

            return deploy_run(s3_client(), buckets_from_env(), spec.agent_id, run_day(data_interval_start), run_id)

        @task
        def skip_deploy(decision: dict) -> str:
            return decision["reason"]

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def report(data_interval_start=None, run_id=None) -> str:
            from agent_retraining.reporting import build_report, summary
            from agent_retraining.snapshot import Window
            from agent_retraining.storage import buckets_from_env
            from retraining_runtime import run_day, s3_client

            window = Window.ending(run_day(data_interval_start), spec)
            result = build_report(s3_client(), buckets_from_env(), spec, window, run_id)
            print(summary(result))
            return result["outcome"]

        @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
        def fail_run_if_a_stage_failed() -> None:
            """Leaf watcher: `report` always succeeds, so without this a failed stage would leave the run green."""
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("a stage of this run failed; see report.json and the failed task's log")

        snap = snapshot()
        validated = validate(snap)
        split = build_features(validated)
        trained = train.partial(split=split).expand(candidate=list(spec.candidates))
        decision = evaluate(split, trained)
        deployed, kept = deploy(), skip_deploy(decision)
        branches = [deployed, kept]
        if spec.approval.required:
            from airflow.providers.standard.operators.hitl import ApprovalOperator

            approve_deploy = ApprovalOperator(
                task_id="approve_deploy",
                subject=f"Deploy a new model for {spec.agent_id}?",
                body="{{ ti.xcom_pull(task_ids='evaluate')['reason'] }}",
                defaults="Reject",  # no answer in time keeps the champion
                response_timeout=timedelta(hours=spec.approval.timeout_hours),
            )
            choose(decision) >> [approve_deploy, kept]
            approve_deploy >> deployed
            branches.append(approve_deploy)
        else:
            choose(decision) >> branches
        stages = [snap, validated, split, trained, decision, *branches]
        stages >> report()
        stages >> fail_run_if_a_stage_failed()

    return retraining()


for _spec in load_all_specs():
    globals()[_spec.dag_id] = build_retraining_dag(_spec)
