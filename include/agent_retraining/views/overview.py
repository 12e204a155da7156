"""What every agent runs and how it got there, gathered from S3 for the Airflow UI's "Agent models" page.

An operator's questions, in the order they ask them: which model serves now
(and is a canary beside it), whether the loop pays (the trend of the reward each
version earned around every release: trends.py), what changed and why (deploys,
canary verdicts, rollbacks, refused nights, newest first), and what the last
nights decided, rule by rule and day by day. Everything comes from the manifest and the runs'
reports, so the page tells what the pipeline recorded, not what a database of
its own believes.
"""

from __future__ import annotations

from agent_retraining.contract import LATEST_RUN, runs_prefix
from agent_retraining.manifest import read_manifest
from agent_retraining.spec import ROLLBACK_DAG_ID, AgentSpec
from agent_retraining.storage import Buckets, list_folders, read_json_or_none
from agent_retraining.tracking.mirror import MLFLOW_RECORD
from agent_retraining.views.trends import collect

RECENT_DAYS = 7  # nights shown per agent


def recent_runs(s3, buckets: Buckets, agent_id: str, days: int = RECENT_DAYS) -> list[dict]:
    """The latest run of each of the agent's newest days that have one, newest first, from their reports."""
    folders = list_folders(s3, buckets.artifacts, runs_prefix(agent_id))
    runs = []
    for folder in reversed(folders):
        pointer = read_json_or_none(s3, buckets.artifacts, folder + LATEST_RUN)
        report = pointer and read_json_or_none(s3, buckets.artifacts, pointer["report_key"])
        if report:
            decision, validation = report.get("decision") or {}, report.get("validation") or {}
            runs.append({
                "day": report["day"], "run_id": report["run_id"], "outcome": report["outcome"],
                "verdict": report.get("verdict", report["outcome"]), "winner": report.get("winner"),
                "finished_at": pointer["written_at"], "rules": decision.get("rules", []),
                "data_gate": {"passed": validation.get("passed"), "failures": validation.get("failures", []),
                              "days": validation.get("days", []), "reward_rates": validation.get("reward_rates") or []},
                "report_html_key": report.get("report_html_key"),
                "mlflow": read_json_or_none(s3, buckets.artifacts, pointer["run_dir"] + MLFLOW_RECORD),
            })  # fmt: skip
        if len(runs) == days:
            break
    return runs


def _event(at: str | None, event: str, version: str | None, run_id: str | None, reason: str | None,
           dag_id: str) -> dict:  # fmt: skip
    return {"at": at, "event": event, "version": version, "run_id": run_id, "reason": reason, "dag_id": dag_id}


def timeline(spec: AgentSpec, manifest: dict | None, runs: list[dict]) -> list[dict]:
    """Deploys, promotions and rollbacks (every model the manifest named), canary starts, verdicts and clearings,
    and the nights that changed nothing, with their reasons and the DAG whose run did it; newest first."""
    dag_of = {"retraining": spec.dag_id, "canary": spec.canary_dag_id, "rollback": ROLLBACK_DAG_ID,
              "started": spec.dag_id, "promoted": spec.canary_dag_id, "aborted": spec.canary_dag_id,
              "cleared": ROLLBACK_DAG_ID}  # fmt: skip
    events = [
        _event(
            e.get("deployed_at"),
            f"live: {e.get('deployed_by')}",
            e["version"],
            e.get("run_id"),
            e.get("reason"),
            dag_of.get(e.get("deployed_by"), spec.dag_id),
        )  # fmt: skip
        for e in ([manifest, *manifest.get("history", [])] if manifest else [])
    ]
    # a canary line written by hand may lack a field: its event is shown with what it has
    events += [_event(c.get("at"), f"canary {c.get('event')}", c.get("version"), c.get("run_id"), c.get("reason"),
                      dag_of.get(c.get("event"), spec.canary_dag_id))
               for c in (manifest or {}).get("canary_history", [])]  # fmt: skip
    events += [_event(r["finished_at"], f"night of {r['day']}: {r['outcome']}", None, r["run_id"], r["verdict"],
                      spec.dag_id) for r in runs if r["outcome"] not in ("deployed", "canary started")]  # fmt: skip
    return sorted(events, key=lambda e: str(e["at"] or ""), reverse=True)


def agent_overview(s3, buckets: Buckets, spec: AgentSpec) -> dict:
    """One agent's live model, canary, trends, timeline and recent nights."""
    manifest, _ = read_manifest(s3, buckets, spec.agent_id)
    runs = recent_runs(s3, buckets, spec.agent_id)
    events = timeline(spec, manifest, runs)
    live = manifest and {k: manifest.get(k) for k in ("version", "trained_on", "metrics", "deployed_at",
                                                       "deployed_by", "run_id", "reason")}  # fmt: skip
    return {"agent_id": spec.agent_id, "description": spec.description, "dag_id": spec.dag_id,
            "release": spec.release.mode, "live": live, "canary": (manifest or {}).get("canary"),
            "canary_dag_id": spec.canary_dag_id, "trends": collect(s3, buckets, spec, manifest, events),
            "timeline": events, "runs": runs}  # fmt: skip


def report_page_key(agent_ids: list[str], key: str) -> str | None:
    """`key` if it names a run's report.html of a known agent, else None: the page serves nothing else."""
    prefix = next((runs_prefix(a) for a in agent_ids if key.startswith(runs_prefix(a) + "dt=")), None)
    if prefix is None or not key.endswith("/report.html") or ".." in key or key[len(prefix) :].count("/") != 2:
        return None
    return key
