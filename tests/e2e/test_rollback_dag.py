"""The manual rollback DAG, run with `dag.test()` against the real local S3 server."""

import pytest

from agent_retraining.manifest import read_manifest
from agent_retraining.release.deploy import deploy
from tests.conftest import asset_events, load_dag_file
from tests.include.test_manifest import _decision, an_encoding

AGENT = "support-bot"  # the rollback form offers the agents of include/agents/


@pytest.fixture(scope="module")
def rollback_dag(airflow_db):
    return load_dag_file("rollback_model.py").rollback_model_dag


@pytest.fixture(scope="module")
def versions(s3, buckets, support_bot):
    """Three deployed versions: one of an older feature encoding, then two of the spec's current one."""
    from agent_retraining.models.encoding import encoding_of

    encodings = ("old-encoding", encoding_of(support_bot), encoding_of(support_bot))
    return [
        deploy(s3, buckets, AGENT, _decision(s3, buckets, AGENT, name, f"2026-07-0{i}", encoding=enc), f"run-{i}")[
            "version"
        ]
        for i, (name, enc) in enumerate(
            zip(("logistic_regression", "lightgbm", "torch_mlp"), encodings, strict=True), start=1
        )
    ]


def test_rollback_dag_points_the_manifest_at_the_previous_version(rollback_dag, versions, s3, buckets):
    dag_run = rollback_dag.test(run_conf={"agent_id": AGENT, "target": "previous", "reason": "wrong escalations"})
    assert dag_run.state == "success"
    manifest, _ = read_manifest(s3, buckets, AGENT)
    assert manifest["version"] == versions[1]
    assert manifest["reason"] == "rollback: wrong escalations"
    assert manifest["run_id"] == dag_run.run_id
    # Only this agent's manifest Asset has an event (through the DAG's alias), and it says what happened.
    assert asset_events(dag_run.run_id) == {f"{AGENT}_model_manifest": [{
        "agent_id": AGENT, "outcome": "rolled_back", "version": versions[1], "canary_version": None,
        "previous_version": versions[2], "run_id": dag_run.run_id,
    }]}  # fmt: skip


def test_rollback_dag_refuses_a_model_the_agent_could_not_load(rollback_dag, versions, s3, buckets, capfd):
    """The next step back is a model of an older feature encoding: the agent's client would refuse it."""
    _, etag = read_manifest(s3, buckets, AGENT)
    capfd.readouterr()
    dag_run = rollback_dag.test(run_conf={"agent_id": AGENT, "target": "previous", "reason": "one more step back"})
    assert dag_run.state == "failed"
    output = capfd.readouterr()
    from agent_retraining.models.encoding import fingerprint

    old = fingerprint(an_encoding("old-encoding"))
    assert f"refusing to roll back to {versions[0]}: it was trained for feature encoding {old}" in (
        output.out + output.err
    )
    assert read_manifest(s3, buckets, AGENT)[1] == etag


def test_rollback_dag_refuses_a_target_that_is_not_in_the_history(rollback_dag, versions, s3, buckets):
    _, etag = read_manifest(s3, buckets, AGENT)
    conf = {"agent_id": AGENT, "target": "20200101-lightgbm-0123456789ab", "reason": "try it"}
    assert rollback_dag.test(run_conf=conf).state == "failed"
    assert read_manifest(s3, buckets, AGENT)[1] == etag


@pytest.mark.parametrize(
    "conf",
    [
        {"agent_id": AGENT, "target": "../../other-bot/manifest", "reason": "escape"},
        {"agent_id": "unknown-bot", "target": "previous", "reason": "who?"},
        {"agent_id": AGENT, "target": "previous", "reason": ""},
    ],
)
def test_rollback_params_are_validated_before_anything_runs(rollback_dag, versions, conf):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        rollback_dag.test(run_conf=conf)
