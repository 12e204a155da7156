"""Run one retraining of an agent for one day of logs on the embedded default.

Runs the agent's DAG in-process with `dag.test()` for the data interval
[day, day + 1), prints the run report and the live manifest, and exits 1 when
the run failed (including data refused by the gate).

    python scripts/retrain.py --agent support-bot --day 2026-11-28
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "retrain_agents.py"


def load_dag(dag_id: str):
    module_spec = importlib.util.spec_from_file_location("retrain_agents_dags", DAG_FILE)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, dag_id):
        raise SystemExit(f"no DAG {dag_id} in {DAG_FILE}; is include/agents/<agent_id>.yaml there?")
    return getattr(module, dag_id)


def retrain_day(spec, day: date):
    """The agent's DAG for the data interval [day, day + 1) with `dag.test()`; the run and its report (or None)."""
    from agent_retraining.contract import run_prefix
    from agent_retraining.storage import buckets_from_env, read_json_or_none, s3_client_from_env

    # A manual run covers the latest whole interval before its logical date, so the logical date is the end of
    # the day to retrain on.
    dag_run = load_dag(spec.dag_id).test(logical_date=datetime.combine(day + timedelta(days=1), time(), UTC))
    run_dir = run_prefix(spec.agent_id, day, dag_run.run_id)
    return dag_run, read_json_or_none(s3_client_from_env(), buckets_from_env().artifacts, run_dir + "report.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True)
    parser.add_argument("--day", required=True, type=date.fromisoformat)
    args = parser.parse_args(argv)

    from agent_retraining.manifest import read_manifest
    from agent_retraining.spec import load_agent
    from agent_retraining.storage import buckets_from_env, s3_client_from_env
    from agent_retraining.views.reporting import summary

    spec = load_agent(args.agent)
    dag_run, report = retrain_day(spec, args.day)

    s3, buckets = s3_client_from_env(), buckets_from_env()
    ran = [ti.task_id for ti in dag_run.get_task_instances() if ti.start_date is not None]
    print(f"\nrun {dag_run.run_id}: {dag_run.state}")
    print(summary(report) if report else "no report was written")
    manifest, _ = read_manifest(s3, buckets, spec.agent_id)
    if manifest:
        shown = {k: v for k, v in manifest.items() if k != "history"}
        shown["history"] = [entry["version"] for entry in manifest.get("history", [])]
        print(f"\nmanifest s3://{buckets.models}/{spec.agent_id}/manifest.json:\n{json.dumps(shown, indent=2)}")
    if not ran or report is None:
        print(f"FAILED: run {dag_run.run_id} for {args.day} executed {len(ran)} task(s) and wrote "
              f"{'a' if report else 'no'} report; nothing was retrained", file=sys.stderr)  # fmt: skip
        return 1
    return 0 if dag_run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
