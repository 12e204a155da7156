"""The production stack's S3 limits, proven on a real S3 server: the policy documents `s3_access.render` writes for
MinIO are attached, unchanged, to identities of a SeaweedFS server of this test's own (SeaweedFS evaluates IAM
policies attached to an identity), and every identity tries what it should and should not be able to do.

The server is a second one, on ports far from the session's (9333, 8888, 8333 and their +10000 gRPC ports), so
that its identities never mix with the session's.
"""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import time

import boto3
import pytest
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from agent_retraining.dev import local_s3
from agent_retraining.s3_access import AgentCredential, render
from agent_retraining.storage import Buckets

HOST, S3_PORT, INTERNAL_PORTS = "127.0.0.1", 29103, (29100, 29101, 29102)
BUCKETS = Buckets(logs="access-logs", models="access-models", artifacts="access-artifacts")
AGENTS = {"agent-a": AgentCredential("agent-a", "agentakey", "agentasecret1"),
          "agent-b": AgentCredential("agent-b", "agentbkey", "agentbsecret1")}  # fmt: skip
KEYS = {"admin": ("accessadmin", "accessadminsecret"), "pipeline": ("pipelinekey", "pipelinesecret1"),
        "reader": ("readerkey", "readersecret1"),
        **{agent: (c.access_key, c.secret_key) for agent, c in AGENTS.items()}}  # fmt: skip


def _client(identity: str):
    access, secret = KEYS[identity]
    return boto3.client("s3", endpoint_url=f"http://{HOST}:{S3_PORT}", aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """SeaweedFS with an admin (to seed objects) and the stack's users, each holding the policy rendered for it."""
    state = tmp_path_factory.mktemp("s3-access")
    policy_files = render(state / "policies", BUCKETS, list(AGENTS.values()))
    policies = {path.stem: path.read_text() for path in policy_files if path.suffix == ".json"}
    users = {"pipeline": "retraining-pipeline", "reader": "retraining-reader"}
    users |= {line.split()[0]: line.split()[3] for line in (state / "policies" / "agents.txt").read_text().splitlines()}
    config = {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": KEYS["admin"][0], "secretKey": KEYS["admin"][1]}],
             "actions": ["Admin"]},
            *({"name": user, "credentials": [{"accessKey": KEYS[user][0], "secretKey": KEYS[user][1]}],
               "policyNames": [policy]} for user, policy in users.items()),
        ],
        "policies": [{"name": name, "content": content} for name, content in policies.items()],
    }  # fmt: skip
    (state / "identities.json").write_text(json.dumps(config))
    process = local_s3.start_server(state, HOST, S3_PORT, state / "identities.json", INTERNAL_PORTS)
    admin = _client("admin")
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                for bucket in (BUCKETS.logs, BUCKETS.models, BUCKETS.artifacts):
                    admin.create_bucket(Bucket=bucket)
                break
            except ClientError as error:
                if error.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    continue
                raise
            except Exception:
                assert process.poll() is None, (state / "weed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the access-test S3 server did not answer in 60 s"
                time.sleep(0.5)
        admin.put_bucket_versioning(Bucket=BUCKETS.logs, VersioningConfiguration={"Status": "Enabled"})
        for agent in AGENTS:
            admin.put_object(Bucket=BUCKETS.logs, Key=f"{agent}/dt=2026-03-01/events.jsonl", Body=b"{}\n")
            admin.put_object(Bucket=BUCKETS.models, Key=f"{agent}/manifest.json", Body=b"{}")
            admin.put_object(Bucket=BUCKETS.artifacts, Key=f"{agent}/runs/dt=2026-03-01/decision.json", Body=b"{}")
        yield admin
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _allowed(request) -> bool:
    try:
        request()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("AccessDenied", "403"):
            return False
        raise
    except S3UploadFailedError as error:  # a multipart upload wraps the refusal
        if "AccessDenied" in str(error):
            return False
        raise
    return True


def _attempts(client) -> dict[str, object]:
    """Everything an identity may try, by name: each a call that either succeeds or is refused."""
    logs, models, artifacts = BUCKETS.logs, BUCKETS.models, BUCKETS.artifacts
    return {
        "put own logs": lambda: client.put_object(Bucket=logs, Key="agent-a/dt=2026-03-02/events.jsonl", Body=b"{}"),
        "put own _SUCCESS": lambda: client.put_object(Bucket=logs, Key="agent-a/dt=2026-03-02/_SUCCESS", Body=b""),
        "multipart upload to own logs": lambda: client.upload_fileobj(
            io.BytesIO(b"x" * (6 << 20)), logs, "agent-a/dt=2026-03-02/big.jsonl",
            Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)),
        "put another agent's logs": lambda: client.put_object(Bucket=logs, Key="agent-b/dt=2026-03-02/x.jsonl",
                                                              Body=b"{}"),
        "copy another agent's logs into own": lambda: client.copy_object(
            Bucket=logs, Key="agent-a/dt=2026-03-03/copied.jsonl",
            CopySource={"Bucket": logs, "Key": "agent-b/dt=2026-03-01/events.jsonl"}),
        "read logs": lambda: client.get_object(Bucket=logs, Key="agent-b/dt=2026-03-01/events.jsonl"),
        "list logs": lambda: client.list_objects_v2(Bucket=logs, Prefix="agent-b/"),
        "delete logs": lambda: client.delete_object(Bucket=logs, Key="agent-a/dt=2026-03-01/events.jsonl"),
        "read own manifest": lambda: client.get_object(Bucket=models, Key="agent-a/manifest.json"),
        "list own models": lambda: client.list_objects_v2(Bucket=models, Prefix="agent-a/"),
        "read another agent's manifest": lambda: client.get_object(Bucket=models, Key="agent-b/manifest.json"),
        "list every model": lambda: client.list_objects_v2(Bucket=models),
        "write a manifest": lambda: client.put_object(Bucket=models, Key="agent-a/manifest.json", Body=b"{}"),
        "delete a manifest": lambda: client.delete_object(Bucket=models, Key="agent-b/manifest.json"),
        "read artifacts": lambda: client.get_object(Bucket=artifacts, Key="agent-b/runs/dt=2026-03-01/decision.json"),
        "list artifacts": lambda: client.list_objects_v2(Bucket=artifacts),
        "write artifacts": lambda: client.put_object(Bucket=artifacts, Key="agent-a/runs/x.json", Body=b"{}"),
        "delete artifacts": lambda: client.delete_object(Bucket=artifacts, Key="agent-a/runs/x.json"),
    }  # fmt: skip


# What each user may do; everything else in `_attempts` must be refused.
MAY = {
    "agent-a": {"put own logs", "put own _SUCCESS", "multipart upload to own logs", "read own manifest",
                "list own models"},
    "reader": {"read logs", "list logs", "read own manifest", "list own models", "read another agent's manifest",
               "list every model", "read artifacts", "list artifacts"},
    "pipeline": {"read logs", "list logs", "read own manifest", "list own models", "read another agent's manifest",
                 "list every model", "write a manifest", "read artifacts", "list artifacts", "write artifacts",
                 "delete artifacts"},
}  # fmt: skip


@pytest.mark.parametrize("identity", sorted(MAY))
def test_each_user_can_do_what_its_role_needs_and_nothing_more(server, identity):
    outcome = {name: _allowed(attempt) for name, attempt in _attempts(_client(identity)).items()}
    assert {name for name, allowed in outcome.items() if allowed} == MAY[identity]


def test_an_agent_without_a_manifest_reads_it_as_missing_not_as_forbidden(server):
    """The agent's client tells 'nothing deployed yet' from a broken store by the 404: its listing grant keeps it."""
    with pytest.raises(ClientError) as refused:
        _client("agent-b").get_object(Bucket=BUCKETS.models, Key="agent-b/not-yet/manifest.json")
    assert refused.value.response["Error"]["Code"] == "NoSuchKey"


def test_an_agent_that_rewrites_its_logs_cannot_destroy_what_was_there(server):
    """The agent may overwrite its own object (it cannot be told apart from a first write), never the history: the
    logs bucket is versioned and nobody but the admin may delete there."""
    key = "agent-b/dt=2026-03-01/events.jsonl"
    _client("agent-b").put_object(Bucket=BUCKETS.logs, Key=key, Body=b"rewritten\n")
    versions = server.list_object_versions(Bucket=BUCKETS.logs, Prefix=key)["Versions"]
    assert len(versions) == 2
    (original,) = [version for version in versions if not version["IsLatest"]]
    body = server.get_object(Bucket=BUCKETS.logs, Key=key, VersionId=original["VersionId"])["Body"].read()
    assert body == b"{}\n"
    for identity in ("agent-b", "pipeline", "reader"):
        delete = functools.partial(_client(identity).delete_object, Bucket=BUCKETS.logs, Key=key,
                                   VersionId=original["VersionId"])  # fmt: skip
        assert not _allowed(delete), identity
