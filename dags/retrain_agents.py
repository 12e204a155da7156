"""
## Nightly retraining of an agent's reward model

One DAG per agent spec in `include/agents/<agent_id>.yaml`. Each run owns one
day of the agent's logs (its data interval, midnight to midnight UTC; a manual
run without a date takes the latest whole day; an agent whose rewards arrive
later, `reward.delay_days` after its decisions, judges the decisions of that
many days before, with their feedback joined) and:

1. **wait_for_logs**: waits, without holding a worker slot, for the day's
   `_SUCCESS` marker; fails with a clear message when it is still missing
   `wait_for_logs_hours` after the day ended;
2. **validate_day**: one mapped task per day of the training window. A day is
   read, parsed and judged by the data gate (a Great Expectations suite
   generated from the spec) once, into a validated day fingerprinted by its
   objects' ETags and the gate's settings; later runs reuse it, and judge it
   again when an object or a setting changed;
3. **validate**: the window's verdict from the stored days (event ids unique
   across days, drift and reward rate against the earlier days). The run's own
   day must pass, or the run fails here and nothing trains on bad data; a
   refused earlier day is left out and named (or blocks, if the spec says so);
4. **build_features**: the train sample and the holdout, read day by day from
   the usable validated days, the newest day(s) held out;
5. **train**: one mapped task per candidate (scikit-learn, LightGBM, PyTorch);
6. **evaluate**: every candidate and the live model on the same holdout rows,
   then the gate of the spec;
7. **choose** (branch): **deploy** (artifact written once, manifest swapped by
   compare-and-swap; with `release.mode: canary`, into the manifest's canary
   slot, which the DAG `canary_<agent_id>` promotes or aborts from live logs)
   or **skip_deploy**; when the spec asks for approval, an operator approves
   the deploy in the UI first (no answer in time: keep);
8. **report**: always runs and writes `report.json` and `report.html` (the
   verdict in one sentence, every model against the champion, calibration,
   policy values with intervals, slices, the data gate's rules and drift)
   next to the run's artifacts;
9. **mirror_to_mlflow** (when `MLFLOW_TRACKING_URI` is set): the night's
   candidates and decision as MLflow runs, and after a deploy the registered
   model's `champion` (and `challenger`) alias; a failure to reach MLflow is
   logged and shown on the Agent models page, and changes nothing else;
10. **notify** (when the spec names any notification channel): tells the
    verdict's sentence and a link to the run, on the outcomes the spec names,
    through Airflow's notifiers: e-mail, Slack, or any notifier class. A run
    still unfinished `notifications.deadline_hours` after it was queued is told
    on the same channels by its DeadlineAlert.

Trigger form: training window, candidates, dry run (evaluate and report only),
gate margins, and two operator overrides for manual runs only, both recorded in
the decision: `allow_older_than_live` and `judge_without_champion` (when the
live model's artifact is lost). Backfill runs, for any past day, record the
decision they would take and never move the manifest.

Every run keeps its records in a folder of its own
(`<agent>/runs/dt=<day>/run=<run id>-<hash>/`), so runs of the same day never read or
overwrite each other; `deploy` ships only its own run's decision, and only while
the live manifest is still the one that decision was judged against.

Tasks hand data to each other through S3 (the `agent_s3` connection); XCom
carries only object keys and small summaries. S3 throttling, 5xx and connection
errors are retried with backoff; anything else fails the task at once. The run
fails (red) when any stage failed, including data refused by the gate.
`deploy` emits the manifest Asset's event with the agent, the version now live
and the outcome in its `extra`, for DAGs scheduled on that Asset.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta

from airflow.sdk import (
    AsyncCallback,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    TriggerRule,
    dag,
    task,
)

from agent_retraining.spec import AgentSpec, load_all_specs
from retraining_runtime import ANY_DAY, S3_RETRIES, DayLogsSensor, manifest_asset

log = logging.getLogger(__name__)


def ui_base_url() -> str:
    """Where links to runs point: Airflow's [api] base_url, or the embedded default's address."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080")


def run_params(spec: AgentSpec) -> dict:
    """The trigger form; defaults come from the spec, and every value is validated before a run starts."""
    return {
        "window_days": Param(
            spec.training.window_days, type="integer", minimum=spec.training.holdout_days + 1, maximum=365,
            title="Training window (days)", description="Days of logs to train on, ending with the run's day.",
        ),
        "candidates": Param(
            list(spec.candidates), type="array", items={"type": "string", "enum": list(spec.candidates)},
            minItems=1, uniqueItems=True, title="Candidates", description="Which candidate models to train.",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Evaluate and report, never deploy.",
        ),
        "allow_older_than_live": Param(
            False, type="boolean", title="Allow replacing a model trained on newer data",
            description="Manual runs only, and logged in the decision: waive the rule that a deploy must not "
            "replace a live model trained on newer data than this run's.",
        ),
        "judge_without_champion": Param(
            False, type="boolean", title="Judge without the live model",
            description="Manual runs only, and logged in the decision: when the live model's artifact is missing "
            "or tampered, judge on the floors and against the logging policy instead of failing the run.",
        ),
        "policy_value_margin": Param(
            spec.gate.policy_value_margin, type="number", minimum=0, maximum=1, title="Policy value margin",
            description="How far below zero the 95% lower bound of the paired policy-value difference (against "
            "the champion, or the logging policy when there is none) may reach.",
        ),
        "max_auc_regression": Param(
            spec.gate.max_regression.roc_auc, type="number", minimum=0, maximum=1, title="Max ROC AUC regression",
            description="How much lower than the champion's the challenger's ROC AUC may be.",
        ),
    }  # fmt: skip


def deadline_alert(spec: AgentSpec) -> DeadlineAlert | None:
    """A run still unfinished `deadline_hours` after it was queued (a scheduled run is queued when its day ends) is
    told on the spec's channels by the triggerer, while it still runs; none when nobody is to be told."""
    notifications = spec.notifications
    if not notifications.channels or "deadline_missed" not in notifications.on:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=notifications.deadline_hours),
        callback=AsyncCallback(
            "agent_retraining.views.notifiers.deadline_missed",
            kwargs={
                "agent_id": spec.agent_id,
                "dag_id": spec.dag_id,
                "base_url": ui_base_url(),
                "notifications": notifications.model_dump(mode="json"),
            },  # fmt: skip
        ),
    )


def build_retraining_dag(spec: AgentSpec):
    @dag(
        dag_id=spec.dag_id,
        auto_register=False,  # registered by the loop at the bottom, so a DAG that fails half-built never is
        description=f"Nightly retraining of {spec.agent_id}: {spec.description}",
        doc_md=__doc__,
        # A data-interval timetable: each run owns [start, end) of logs. A bare cron
        # string would give Airflow 3's zero-length CronTriggerTimetable intervals.
        schedule=CronDataIntervalTimetable(spec.schedule, timezone="UTC"),
        start_date=ANY_DAY,
        catchup=False,
        max_active_runs=3,  # backfill days train in parallel; `deploy` moves the manifest one run at a time
        tags=["retraining", f"agent:{spec.agent_id}"],
        access_control=spec.access_control,  # the teams the spec names, as FAB DAG-level permissions
        default_args={"owner": spec.owner, **S3_RETRIES},
        params=run_params(spec),
        deadline=deadline_alert(spec),
    )
    def retraining():
        @task
        def days_of_window() -> list[str]:
            """The window's days, one `validate_day` each; a cleared run starts its own folder afresh here."""
            from agent_retraining.views.reporting import clear_run
            from retraining_runtime import current_run

            run = current_run(spec)
            clear_run(run.s3, run.buckets, run.run_dir)
            return [day.isoformat() for day in run.window.days]

        @task(multiple_outputs=False, map_index_template="{{ task.op_kwargs['day'] }}")
        def validate_day(day: str) -> dict:
            from datetime import date

            from agent_retraining.datagate.validate_day import judge_or_reuse
            from retraining_runtime import current_run

            run = current_run(spec)
            return judge_or_reuse(run.s3, run.buckets, run.spec, date.fromisoformat(day))

        @task(multiple_outputs=False)
        def validate(checked: list[dict]) -> dict:
            from agent_retraining.datagate.rules import DataRejected
            from agent_retraining.datagate.validate import judge_window
            from retraining_runtime import current_run, final

            run = current_run(spec)
            with final(DataRejected, prefix="data gate refused the logs: "):  # the same logs would be refused again
                result = judge_window(run.s3, run.buckets, run.spec, run.window, list(checked), run.run_dir)
            for left_out in result["left_out"]:
                log.warning("left out %s: %s", left_out["day"], "; ".join(left_out["why"]))
            for warning in result["warnings"]:
                log.warning("data gate warning: %s", warning)
            left_out = [d["day"] for d in result["left_out"]]
            return {"rows": result["rows"], "usable_days": len(result["usable_days"]), "left_out": left_out}

        @task(multiple_outputs=False)
        def build_features() -> dict:
            from agent_retraining.models.features import build_split
            from retraining_runtime import current_run

            run = current_run(spec)
            return build_split(run.s3, run.buckets, run.spec, run.window, run.run_dir)

        @task
        def candidates(params=None) -> list[str]:
            from agent_retraining.spec import with_run_params

            return with_run_params(spec, params).candidates

        @task(multiple_outputs=False, map_index_template="{{ task.op_kwargs['candidate'] }}")
        def train(candidate: str, split: dict) -> dict:
            from agent_retraining.models.training import train_candidate
            from retraining_runtime import current_run

            run = current_run(spec)
            return train_candidate(
                run.s3, run.buckets, run.spec, run.window, candidate, split["train_key"], run.run_dir
            )

        @task(multiple_outputs=False)
        def evaluate(split: dict, trained: list[dict], params=None, dag_run=None) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from agent_retraining.evaluate.decide import ChampionUnavailable, evaluate_and_decide
            from agent_retraining.evaluate.rules import RunContext
            from retraining_runtime import current_run, final

            run = current_run(spec)
            run_type = getattr(dag_run.run_type, "value", dag_run.run_type)  # an enum here: "backfill", ...
            context = RunContext(
                run_type, params["allow_older_than_live"], params["dry_run"], params["judge_without_champion"]
            )
            with final(ChampionUnavailable):  # fail closed: never a floors-only decision by accident
                decision = evaluate_and_decide(
                    run.s3, run.buckets, run.spec, run.window, split["holdout_key"], list(trained), run.run_dir, context
                )
            if decision["alert"]:  # the spec's failing_champion: alert; the run ends red and notifies `failed`
                raise AirflowFailException(decision["reason"])
            failed = [rule["rule"] for rule in decision["rules"] if not rule["passed"]]
            return {"deploy": decision["deploy"], "winner": decision["winner"]["candidate"],
                    "reason": decision["reason"], "failed_rules": failed}  # fmt: skip

        @task.branch
        def choose(decision: dict, ti=None) -> str:
            """Deploy only when every rule passed; the decision's summary is kept as this task's XCom."""
            ti.xcom_push(key="decision", value=decision)
            log.info("%s", decision["reason"])
            if not decision["deploy"]:
                return "skip_deploy"
            return "approve_deploy" if spec.approval.required else "deploy"

        @task(
            multiple_outputs=False,
            max_active_tis_per_dag=1,  # one run at a time moves this agent's manifest
            outlets=[manifest_asset(spec.agent_id)],
        )
        def deploy(run_id=None, outlet_events=None) -> dict:
            from agent_retraining.release.deploy import DeployRefused, LiveModelChanged, deploy_run
            from retraining_runtime import current_run, final, manifest_event

            run = current_run(spec)
            canary_share = spec.release.share if spec.release.mode == "canary" else None
            with final(LiveModelChanged, DeployRefused):  # the decision no longer holds
                result = deploy_run(run.s3, run.buckets, spec.agent_id, run.run_dir, run_id, canary_share)
            outcome = "canary_started" if canary_share else "deployed"
            outlet_events[manifest_asset(spec.agent_id)].extra = manifest_event(spec.agent_id, outcome, result, run_id)
            return result

        @task
        def skip_deploy(decision: dict) -> str:
            return decision["reason"]

        @task(trigger_rule=TriggerRule.ALL_DONE, multiple_outputs=False)
        def report(run_id=None) -> dict:
            from agent_retraining.views.reporting import build_report, summary
            from retraining_runtime import current_run

            run = current_run(spec)
            result = build_report(run.s3, run.buckets, run.spec, run.window, run.run_dir, run_id)
            log.info("%s", summary(result))
            return {k: result[k] for k in ("agent_id", "day", "outcome", "verdict", "report_html_key")}

        @task(trigger_rule=TriggerRule.ALL_DONE, retries=2, retry_policy=None)  # a mail or chat hiccup is worth a retry
        def notify(reported: dict, dag_run=None, **context) -> str | None:
            """The verdict's sentence and a link, on the outcomes the spec names, through the spec's notifiers."""
            from agent_retraining.storage import buckets_from_env
            from agent_retraining.views.notifications import message_for, run_url
            from agent_retraining.views.notifiers import send

            url = run_url(ui_base_url(), spec.dag_id, dag_run.run_id)
            report_uri = f"s3://{buckets_from_env().artifacts}/{reported['report_html_key']}"
            message = message_for(spec, reported, url, report_uri)
            if message is None:
                return None
            told = send(spec.notifications, message, {**context, "dag_run": dag_run})
            log.info("told %s of %s", ", ".join(told), message.event)
            return message.event

        @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
        def mirror_to_mlflow(trained: list[dict], run_id=None) -> list[dict]:
            """The night's candidates and decision as MLflow runs, the aliases after a deploy; what MLflow
            answered is recorded, never raised: the manifest is the source of truth."""
            from agent_retraining.tracking.mirror import mirror_night
            from retraining_runtime import current_run

            run = current_run(spec)
            day = run.window.last.isoformat()
            return mirror_night(run.s3, run.buckets, spec.agent_id, day, run.run_dir, run_id, list(trained))

        @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
        def fail_run_if_a_stage_failed() -> None:
            """Leaf watcher: `report` always succeeds, so without this a failed stage would leave the run green."""
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("a stage of this run failed; see report.json and the failed task's log")

        waited, days = DayLogsSensor(task_id="wait_for_logs", spec=spec), days_of_window()
        checked = validate_day.expand(day=days)
        validated, split = validate(checked), build_features()
        waited >> days
        validated >> split  # build_features reads the validated days the window verdict names
        trained = train.partial(split=split).expand(candidate=candidates())
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
            # `deploy` alone directly follows the approval: on Reject (or a timeout) the operator skips every task
            # directly downstream of it, so `report` and the failure watcher must only see it through `deploy`.
            approve_deploy >> deployed
        else:
            choose(decision) >> branches
        stages = [waited, days, checked, validated, split, trained, decision, *branches]
        reported = report()
        stages >> reported
        stages >> fail_run_if_a_stage_failed()
        if spec.notifications.channels:
            notify(reported)
        if os.environ.get("MLFLOW_TRACKING_URI"):  # MLflow, where a team runs it
            reported >> mirror_to_mlflow(trained)

    return retraining()


def build_broken_spec_dag(stem: str, error: Exception):
    """Stands in for an agent whose spec does not parse: the UI shows the file and field, the other agents run on."""

    @dag(
        dag_id="retrain_" + re.sub(r"[^A-Za-z0-9_.-]", "_", stem),
        description=f"BROKEN SPEC, fix it to get this agent's DAG back: {error}"[:1000],
        doc_md=f"## The spec of `{stem}` does not parse\n\n```\n{error}\n```\n\nNothing runs for this agent "
        "until the file is fixed; every other agent's DAG is unaffected.",
        schedule=None,
        start_date=ANY_DAY,
        catchup=False,
        tags=["retraining", "broken-spec"],
        default_args={"owner": "ml-platform", "retries": 1},
    )
    def broken_spec():
        @task
        def spec_error() -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error))

        spec_error()

    return broken_spec()


_specs, _spec_errors = load_all_specs()
for _spec in _specs:
    try:
        globals()[_spec.dag_id] = build_retraining_dag(_spec)
    except Exception as _exc:  # noqa: BLE001 - a spec that parses but cannot be built hides only its own agent
        _spec_errors[_spec.agent_id] = _exc
for _stem, _error in _spec_errors.items():
    log.error("agent spec not loaded: %s", _error)
    globals()[f"broken_spec_{_stem}"] = build_broken_spec_dag(_stem, _error)
