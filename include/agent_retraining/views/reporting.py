"""The run report: what a run did, whatever happened, as report.json and a page, report.html.

It is assembled from the records each stage left in the run's own folder in
S3, so it tells the truth even when a stage failed half-way: a missing record
means the stage did not finish. The page also shows the agent's trend up to
this night (views/trends.py), so a night is read against the weeks before it.
It also moves the day's `latest.json` pointer to this run, for readers that
want "the latest run of a day".
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent_retraining.contract import latest_run_key
from agent_retraining.manifest import read_manifest
from agent_retraining.records import Decision, Deployment, WindowVerdict, read_record_or_none
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, delete_prefix, put_bytes, write_json
from agent_retraining.views.overview import timeline
from agent_retraining.views.trends import collect, night_of
from agent_retraining.window import Window

# Each stage's record in the run's folder, and its type; a missing one says which stage did not get there.
RUN_RECORDS = {"validation.json": WindowVerdict, "decision.json": Decision, "deployment.json": Deployment}
REPORTED_VALIDATION_FIELDS = ("passed", "failures", "warnings", "rows", "window", "usable_days", "left_out", "days",
                              "rule_counts", "data_docs_key", "reward_rates")  # fmt: skip
REPORTED_DECISION_FIELDS = (
    "deploy", "alert", "reason", "rules", "candidates", "metrics", "logging_policy_value", "champion",
    "judged_against", "policy_value_vs_logging", "policy_value_vs_champion", "reward", "estimator",
    "policy_value_differences",
)  # fmt: skip


def clear_run(s3, buckets: Buckets, run_dir: str) -> int:
    """Remove what an earlier try of this same run wrote, so a cleared run rewrites its own folder from scratch."""
    return delete_prefix(s3, buckets.artifacts, run_dir)


def outcome(records: dict) -> str:
    deployment, decision = records["deployment.json"], records["decision.json"]
    if deployment and deployment["deployed"]:
        return "canary started" if deployment.get("slot") == "canary" else "deployed"
    if deployment and deployment.get("refused"):
        return "deploy refused"
    if deployment:
        return "kept champion: the same model is live already"
    if decision and decision["deploy"]:
        return "kept champion: the deploy was not approved or did not run"
    if decision and decision.get("alert"):
        return "alert: the champion fails today's floors and no candidate passed"
    if decision:
        return "kept champion"
    if records["validation.json"] and not records["validation.json"]["passed"]:
        return "data rejected"
    stage = next(name.removesuffix(".json") for name in RUN_RECORDS if records[name] is None)
    return f"failed before {stage} finished"


def verdict_sentence(agent_id: str, day: str, result: str, records: dict) -> str:
    """The run's verdict in one sentence, for the top of report.html and for notifications."""
    validation, decision, deployment = (records[name] for name in RUN_RECORDS)
    if deployment and deployment.get("refused"):
        return f"{agent_id} {day}: deploy refused: {deployment['refused']}"
    if decision:
        return f"{agent_id} {day}: {result}. {decision['reason']}"
    if validation and not validation["passed"]:
        return f"{agent_id} {day}: data rejected: {validation['failures'][0]}"
    return f"{agent_id} {day}: {result}"


def build_report(s3, buckets: Buckets, spec: AgentSpec, window: Window, run_dir: str, run_id: str) -> dict:
    """report.json and report.html in the run's folder, from whatever records the stages left."""
    from agent_retraining.views.report_page import render

    records = {
        name: read_record_or_none(s3, buckets.artifacts, run_dir + name, kind) for name, kind in RUN_RECORDS.items()
    }
    validation, decision, deployment = (records[name] for name in RUN_RECORDS)
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    result, day = outcome(records), window.last.isoformat()
    report = {
        "agent_id": spec.agent_id,
        "run_id": run_id,
        "day": day,
        "outcome": result,
        "verdict": verdict_sentence(spec.agent_id, day, result, records),
        "validation": validation and {k: validation[k] for k in REPORTED_VALIDATION_FIELDS},
        "decision": decision and {k: decision.get(k) for k in REPORTED_DECISION_FIELDS},
        "winner": decision and decision["winner"]["candidate"],
        "deployment": deployment,
        "live_version": live["version"] if live else None,
        "report_key": run_dir + "report.json",
        "report_html_key": run_dir + "report.html",
    }
    write_json(s3, buckets.artifacts, run_dir + "report.json", report)
    tonight = night_of(window.last, result, run_id)  # its pointer is written after the page
    trends = collect(s3, buckets, spec, live, timeline(spec, live, []), last=window.last, tonight=tonight)
    page = render(report, report["verdict"], spec.description, validation, decision, trends)
    put_bytes(s3, buckets.artifacts, report["report_html_key"], page.encode(), "text/html; charset=utf-8")
    pointer = {"run_id": run_id, "run_dir": run_dir, "report_key": report["report_key"], "outcome": report["outcome"],
               "written_at": datetime.now(UTC).isoformat()}  # fmt: skip
    write_json(s3, buckets.artifacts, latest_run_key(spec.agent_id, window.last), pointer)
    return report


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summary(report: dict) -> str:
    """A few lines for the task log and the command line."""
    lines = [f"{report['agent_id']} {report['day']}: {report['outcome']}"]
    if report["validation"]:
        lines += [f"  data gate refused: {failure}" for failure in report["validation"]["failures"]]
        lines += [f"  data gate warning: {warning}" for warning in report["validation"]["warnings"]]
        lines += [f"  left out {d['day']}: {d['why'][0]}" for d in report["validation"]["left_out"]]
    if report["decision"]:
        lines.append(f"  decision: {report['decision']['reason']}")
        for name, metrics in report["decision"]["metrics"].items():
            shown = ("roc_auc", "log_loss", "brier", "calibration_error", "policy_value")
            lines.append(f"  {name:<20} " + " ".join(f"{key}={_number(metrics[key])}" for key in shown))
    if report["deployment"] and report["deployment"].get("refused"):
        lines.append(f"  deploy refused: {report['deployment']['refused']}")
    lines.append(f"  live model: {report['live_version']}")
    return "\n".join(lines)
