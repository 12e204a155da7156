"""
## Roll an agent's model back

Manual trigger only. Points `s3://<models bucket>/<agent_id>/manifest.json` back
at an earlier version, through the same compare-and-swap as a deploy, and
records who asked and why in the manifest's history.

- **agent_id**: the agent (one of the specs in `include/agents/`);
- **target**: `previous` (the version the live one replaced) or a version name
  from the manifest's history;
- **reason**: why, kept in the manifest.

A target that is not in the history, or whose artifact is missing or does not
match its recorded sha256, is refused and the manifest is left as it was.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from agent_retraining.spec import load_all_specs

AGENT_IDS = [spec.agent_id for spec in load_all_specs()]


@dag(
    dag_id="rollback_model",
    description="Point an agent's manifest back at an earlier model version.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["retraining", "rollback"],
    default_args={"owner": "ml-platform", "retries": 1},
    params={
        "agent_id": Param(AGENT_IDS[0] if AGENT_IDS else "", type="string", enum=AGENT_IDS or [""], title="Agent"),
        "target": Param(
            "previous",
            type="string",
            pattern=r"^(previous|[0-9]{8}-[a-z_]+-[0-9a-f]{12})$",
            title="Target version",
            description="'previous', or a version from the manifest's history, e.g. 20261127-lightgbm-0123456789ab",
        ),
        "reason": Param(type="string", minLength=5, title="Reason", description="Why; kept in the manifest."),
    },
)
def rollback_model():
    @task(multiple_outputs=False, retries=0, outlets=[Asset(name=f"{a}_model_manifest") for a in AGENT_IDS])
    def rollback(params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from agent_retraining import manifest
        from agent_retraining.storage import buckets_from_env
        from retraining_runtime import s3_client

        try:
            result = manifest.rollback(
                s3_client(), buckets_from_env(), params["agent_id"], params["target"], params["reason"], run_id
            )
        except manifest.RollbackRefused as exc:
            raise AirflowFailException(str(exc)) from exc
        print(f"{params['agent_id']}: now {result['version']} (was {result['previous_version']})")
        return result

    rollback()


rollback_model_dag = rollback_model()
