"""Who may do what in S3, as IAM policy documents: one source for the production stack's MinIO users and for the
identities the tests give the local S3 server, so the limits proven locally are the limits deployed.

- pipeline (Airflow's `agent_s3` on the scheduler, triggerer and workers): lists and reads the logs bucket;
  reads, writes and deletes in the artifacts bucket (a rerun clears its day first); reads and writes the models
  bucket without delete (a deployed model stays).
- reader (the api-server's and the dag-processor's `agent_s3`): lists and reads the three buckets, nothing else.
- one user per agent (the deployed agent): writes its own logs prefix only (no read, no list, no delete, so it
  cannot see or rewrite what it sent; the logs bucket is versioned besides), reads its own manifest and models.

    python -m agent_retraining.s3_access render OUT_DIR --credentials FILE

writes `<policy>.json` for every user and `agents.txt` (`agent_id access_key secret_key policy` per line) for
the stack's `minio-setup`, after checking every line of the credentials file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from agent_retraining.contract import AGENT_ID_PATTERN
from agent_retraining.spec import agents_dir
from agent_retraining.storage import Buckets, buckets_from_env

log = logging.getLogger(__name__)

# Whole objects and multipart uploads; CreateMultipartUpload and UploadPart are covered by s3:PutObject.
WRITE_OBJECT = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
LIST_BUCKET = ["s3:GetBucketLocation", "s3:ListBucket"]
# MinIO's rules for keys; letters and digits only, because they pass through a shell and JSON unquoted.
ACCESS_KEY = re.compile(r"^[A-Za-z0-9]{3,128}$")
SECRET_KEY = re.compile(r"^[A-Za-z0-9]{8,40}$")


def _bucket(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def _objects(name: str, prefix: str = "") -> str:
    return f"arn:aws:s3:::{name}/{prefix}*"


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement} for statement in statements]}


def pipeline_policy(buckets: Buckets) -> dict:
    every_bucket = [_bucket(buckets.logs), _bucket(buckets.artifacts), _bucket(buckets.models)]
    return _policy(
        {"Action": LIST_BUCKET, "Resource": every_bucket},
        {"Action": ["s3:GetObject"], "Resource": [_objects(buckets.logs)]},
        {"Action": ["s3:GetObject", "s3:DeleteObject", *WRITE_OBJECT], "Resource": [_objects(buckets.artifacts)]},
        {"Action": ["s3:GetObject", *WRITE_OBJECT], "Resource": [_objects(buckets.models)]},
    )


def reader_policy(buckets: Buckets) -> dict:
    names = [buckets.logs, buckets.artifacts, buckets.models]
    return _policy(
        {"Action": LIST_BUCKET, "Resource": [_bucket(name) for name in names]},
        {"Action": ["s3:GetObject"], "Resource": [_objects(name) for name in names]},
    )


def agent_policy(buckets: Buckets, agent_id: str) -> dict:
    if not re.match(AGENT_ID_PATTERN, agent_id):
        raise ValueError(f"agent id {agent_id!r} does not match {AGENT_ID_PATTERN}")
    own = f"{agent_id}/"
    return _policy(
        {"Action": WRITE_OBJECT, "Resource": [_objects(buckets.logs, own)]},
        {"Action": ["s3:GetObject"], "Resource": [_objects(buckets.models, own)]},
        # listing its own prefix only, so that a manifest not yet written reads as missing, not as forbidden
        {"Action": ["s3:ListBucket"], "Resource": [_bucket(buckets.models)],
         "Condition": {"StringLike": {"s3:prefix": [f"{own}*"]}}},
    )  # fmt: skip


def agent_policy_name(agent_id: str) -> str:
    return f"retraining-agent-{agent_id}"


@dataclass(frozen=True)
class AgentCredential:
    agent_id: str
    access_key: str
    secret_key: str


class CredentialsError(ValueError):
    pass


def read_agent_credentials(path: Path, known_agents: set[str]) -> list[AgentCredential]:
    """One `agent_id access_key secret_key` per line (`#` comments); every line checked, nothing echoed back."""
    credentials: list[AgentCredential] = []
    problems: list[str] = []
    seen_agents: set[str] = set()
    seen_keys: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}: line {number}"
        fields = line.split()
        if len(fields) != 3:
            problems.append(f"{where}: expected 'agent_id access_key secret_key', found {len(fields)} fields")
            continue
        agent_id, access_key, secret_key = fields
        if agent_id not in known_agents:
            problems.append(f"{where}: agent {agent_id!r} has no spec in {agents_dir()}")
        elif agent_id in seen_agents:
            problems.append(f"{where}: agent {agent_id!r} is listed twice")
        if not ACCESS_KEY.match(access_key):
            problems.append(f"{where}: the access key must be 3 to 128 letters or digits")
        elif access_key in seen_keys:
            problems.append(f"{where}: the access key is used by another line")
        if not SECRET_KEY.match(secret_key):
            problems.append(f"{where}: the secret key must be 8 to 40 letters or digits")
        seen_agents.add(agent_id)
        seen_keys.add(access_key)
        credentials.append(AgentCredential(agent_id, access_key, secret_key))
    if problems:
        raise CredentialsError("\n".join(problems))
    return credentials


def render(out_dir: Path, buckets: Buckets, credentials: list[AgentCredential]) -> list[Path]:
    """The policy documents and the agents' user list that minio-setup applies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    policies = {"retraining-pipeline": pipeline_policy(buckets), "retraining-reader": reader_policy(buckets)}
    policies |= {agent_policy_name(c.agent_id): agent_policy(buckets, c.agent_id) for c in credentials}
    written = []
    for name, document in policies.items():
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
    users = "".join(
        f"{c.agent_id} {c.access_key} {c.secret_key} {agent_policy_name(c.agent_id)}\n" for c in credentials
    )
    users_file = out_dir / "agents.txt"
    descriptor = os.open(users_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(descriptor, "w") as file:
        file.write(users)
    return [*written, users_file]


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m agent_retraining.s3_access")
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="write the MinIO policies and the agents' user list")
    render_command.add_argument("out_dir", type=Path)
    render_command.add_argument("--credentials", type=Path, required=True)
    arguments = parser.parse_args(argv)
    known_agents = {path.stem for path in agents_dir().glob("*.yaml")}
    try:
        credentials = read_agent_credentials(arguments.credentials, known_agents)
    except (CredentialsError, OSError, UnicodeDecodeError) as error:
        log.error("agent credentials refused:\n%s", error)
        return 1
    render(arguments.out_dir, buckets_from_env(), credentials)
    without_user = sorted(known_agents - {c.agent_id for c in credentials})
    log.info("policies for the pipeline, the reader and %d agent(s) written to %s", len(credentials), arguments.out_dir)
    if without_user:
        log.warning("agents without an S3 user (add a line to the credentials file): %s", ", ".join(without_user))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
