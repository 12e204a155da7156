"""
## Roll an agent's model back

Manual trigger only. Points `s3://<models bucket>/<agent_id>/manifest.json` back
at an earlier version, through the same compare-and-swap as a deploy, and
records who asked and why in the manifest's history.

- **agent_id**: the agent (one of the specs in `include/agents/`);
- **target**: `previous` (the newest earlier version that was not itself rolled
  away from, so two rollbacks in a row walk back, never forth) or a version name
  from the manifest's history;
- **reason**: why, kept in the manifest.

A running canary is cleared by a rollback (the manifest's `canary_history`
says so, with the reason). A target that is not in the history, was trained for another feature encoding
than the agent's spec has now, or whose artifact is missing or does not match
its recorded sha256, is refused and the manifest is left as it was. A retry
whose swap had already landed reports that, instead of rolling back twice. A
deploy waiting for approval while you roll back will refuse to ship: its
decision was judged against the model you rolled away from.
"""

from __future__ import annotations

import logging

from airflow.sdk import Param, dag, task

from agent_retraining.spec import ROLLBACK_DAG_ID, load_all_specs
from retraining_runtime import ANY_DAY, MANIFEST_MOVED, S3_RETRIES, manifest_asset, manifest_event

log = logging.getLogger(__name__)
AGENT_IDS = [spec.agent_id for spec in load_all_specs()[0]]


@dag(
    dag_id=ROLLBACK_DAG_ID,
    description="Point an agent's manifest back at an earlier model version.",
    doc_md=__doc__,
    schedule=None,
    start_date=ANY_DAY,
    catchup=False,
    max_active_runs=1,
    tags=["retraining", "rollback"],
    default_args={"owner": "ml-platform", **S3_RETRIES},
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
    # An alias, not every agent's Asset: only the run knows which agent's manifest it moves, and a DAG scheduled
    # on another agent's manifest must not wake up.
    @task(multiple_outputs=False, outlets=[MANIFEST_MOVED])
    def rollback(params=None, run_id=None, outlet_events=None) -> dict:
        from agent_retraining.models.features import encoding_id
        from agent_retraining.release import deploy
        from agent_retraining.spec import load_agent
        from agent_retraining.storage import buckets_from_env
        from agent_retraining.tracking.mirror import mirror_aliases
        from retraining_runtime import final, s3_client

        agent_id = params["agent_id"]
        with final(deploy.RollbackRefused):
            result = deploy.rollback(
                s3_client(), buckets_from_env(), agent_id, params["target"], params["reason"], run_id,
                encoding_id=encoding_id(load_agent(agent_id)),
            )  # fmt: skip
        log.info("%s: now %s (was %s)", agent_id, result["version"], result["previous_version"])
        extra = manifest_event(agent_id, "rolled_back", result, run_id)
        outlet_events[MANIFEST_MOVED].add(manifest_asset(agent_id), extra=extra)
        mirror_aliases(s3_client(), buckets_from_env(), agent_id)
        return result

    rollback()


rollback_model_dag = rollback_model()
