"""The run report: one JSON document saying what a run did, whatever happened.

It is assembled from the records each stage left in the run's folder in S3, so
it tells the truth even when a stage failed half-way: a missing record means the
stage did not finish.
"""

from __future__ import annotations

from agent_retraining.contract import run_prefix
from agent_retraining.manifest import read_manifest
from agent_retraining.snapshot import Window
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, list_keys, read_json_or_none, write_json

RUN_RECORDS = ("snapshot.json", "validation.json", "decision.json", "deployment.json")


def clear_run(s3, buckets: Buckets, spec: AgentSpec, window: Window) -> int:
    """Remove what an earlier run of the same day derived, so its records cannot leak into this report."""
    objects = list_keys(s3, buckets.artifacts, run_prefix(spec.agent_id, window.last))
    for obj in objects:
        s3.delete_object(Bucket=buckets.artifacts, Key=obj["key"])
    return len(objects)


def outcome(records: dict) -> str:
    if records["deployment.json"] and records["deployment.json"]["deployed"]:
        return "deployed"
    if records["decision.json"]:
        return "kept champion"
    if records["validation.json"] and not records["validation.json"]["passed"]:
        return "data rejected"
    stage = next(name.removesuffix(".json") for name in RUN_RECORDS if records[name] is None)
    return f"failed before {stage} finished"


def build_report(s3, buckets: Buckets, spec: AgentSpec, window: Window, run_id: str) -> dict:
    prefix = run_prefix(spec.agent_id, window.last)
    records = {name: read_json_or_none(s3, buckets.artifacts, prefix + name) for name in RUN_RECORDS}
    snapshot, validation, decision, deployment = (records[name] for name in RUN_RECORDS)
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    report = {
        "agent_id": spec.agent_id,
        "run_id": run_id,
        "day": window.last.isoformat(),
        "outcome": outcome(records),
        "snapshot": snapshot and {k: snapshot[k] for k in ("rows", "window", "days", "quarantined", "snapshot_key")},
        "validation": validation
        and {k: validation[k] for k in ("passed", "failures", "warnings", "rows", "rule_counts", "data_docs_key")},
        "decision": decision
        and {k: decision[k] for k in ("deploy", "reason", "rules", "metrics", "logging_policy_value", "champion")},
        "winner": decision and decision["winner"]["candidate"],
        "deployment": deployment,
        "live_version": live["version"] if live else None,
        "report_key": prefix + "report.json",
    }
    write_json(s3, buckets.artifacts, prefix + "report.json", report)
    return report


def summary(report: dict) -> str:
    """A few lines for the task log and the command line."""
    lines = [f"{report['agent_id']} {report['day']}: {report['outcome']}"]
    if report["validation"]:
        lines += [f"  data gate refused: {failure}" for failure in report["validation"]["failures"]]
        lines += [f"  data gate warning: {warning}" for warning in report["validation"]["warnings"]]
    if report["decision"]:
        lines.append(f"  decision: {report['decision']['reason']}")
        for name, metrics in report["decision"]["metrics"].items():
            lines.append(
                f"  {name:<20} auc={metrics['roc_auc']:.4f} logloss={metrics['log_loss']:.4f} "
                f"brier={metrics['brier']:.4f} ece={metrics['calibration_error']:.4f} "
                f"policy_value={metrics['policy_value']:.4f}"
            )
    lines.append(f"  live model: {report['live_version']}")
    return "\n".join(lines)
