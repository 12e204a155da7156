"""Run one retraining of an agent for one day of logs on the embedded default.

Runs the agent's DAG in-process with `dag.test()` for the data interval
[day, day + 1) (agent_retraining.dev.dag_runner): one line per task as it ends,
then the run report and the live manifest; exits 1 when the run failed
(including data refused by the gate). Airflow's own log goes to
.local/logs/retrain-<agent>-<day>.log, or to the terminal with --verbose.

    python scripts/retrain.py --agent support-bot --day 2026-11-28 [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

LOG_DIR = Path(__file__).resolve().parents[1] / ".local" / "logs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True)
    parser.add_argument("--day", required=True, type=date.fromisoformat)
    parser.add_argument("--verbose", action="store_true", help="print Airflow's whole log instead of a line a task")
    args = parser.parse_args(argv)

    from agent_retraining.dev.dag_runner import run_night
    from agent_retraining.manifest import read_manifest
    from agent_retraining.spec import load_agent
    from agent_retraining.storage import buckets_from_env, s3_client_from_env
    from agent_retraining.views.reporting import summary

    spec = load_agent(args.agent)
    log_file = None if args.verbose else LOG_DIR / f"retrain-{spec.agent_id}-{args.day}.log"
    print(f"{spec.dag_id} for {args.day}" + (f" (Airflow's log: {log_file})" if log_file else ""), flush=True)
    dag_run, report = run_night(spec, args.day, log_file)

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
