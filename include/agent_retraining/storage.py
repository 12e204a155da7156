"""S3 access shared by every stage.

Tasks hand data to each other only through S3, so these helpers are the whole
I/O surface: plain bytes, JSON, Parquet, and the two conditional writes
(`If-None-Match: *` for immutable objects, `If-Match: <etag>` for the manifest)
that make deploys safe when runs race.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists already, or changed since it was read."""


@dataclass(frozen=True)
class Buckets:
    logs: str
    models: str
    artifacts: str


def buckets_from_env() -> Buckets:
    """Bucket names come from the environment (local.env, or the compose file in production)."""
    missing = [name for name in ("LOGS_BUCKET", "MODELS_BUCKET", "ARTIFACTS_BUCKET") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"environment variables not set: {', '.join(missing)} (see local.env.example)")
    return Buckets(os.environ["LOGS_BUCKET"], os.environ["MODELS_BUCKET"], os.environ["ARTIFACTS_BUCKET"])


def s3_client_from_env(timeout: float = 60.0, attempts: int = 3):
    """A boto3 client for code that runs outside Airflow (CLI, simulator, agent, tests)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": attempts, "mode": "standard"}
        ),
    )


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_missing(error: ClientError) -> bool:
    return _status(error) == 404 or error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def get_bytes(s3, bucket: str, key: str) -> tuple[bytes, str]:
    """Object body and its ETag (the token a later `If-Match` write needs)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    return response["Body"].read(), response["ETag"]


def exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return False
        raise
    return True


def put_bytes(s3, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)["ETag"]


def put_if_absent(s3, bucket: str, key: str, body: bytes) -> str:
    """Write once: raises PreconditionFailed when the key exists (artifacts are immutable)."""
    try:
        return s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
    except ClientError as error:
        if _status(error) in (409, 412):
            raise PreconditionFailed(f"s3://{bucket}/{key} exists already") from error
        raise


def put_if_match(s3, bucket: str, key: str, body: bytes, etag: str | None) -> str:
    """Compare-and-swap: replace only the version read with `etag` (None: only if absent)."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        return s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **condition)["ETag"]
    except ClientError as error:
        if _status(error) in (409, 412):
            raise PreconditionFailed(f"s3://{bucket}/{key} changed since it was read") from error
        raise


def list_keys(s3, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under a prefix, with key, size and ETag, in key order."""
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend({"key": o["Key"], "size": o["Size"], "etag": o["ETag"]} for o in page.get("Contents", []))
    return sorted(objects, key=lambda o: o["key"])


def read_json(s3, bucket: str, key: str) -> Any:
    return json.loads(get_bytes(s3, bucket, key)[0])


def read_json_or_none(s3, bucket: str, key: str) -> Any:
    try:
        return read_json(s3, bucket, key)
    except ClientError as error:
        if is_missing(error):
            return None
        raise


def write_json(s3, bucket: str, key: str, value: Any) -> str:
    body = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
    return put_bytes(s3, bucket, key, body, "application/json")


def write_parquet(s3, bucket: str, key: str, table) -> str:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return put_bytes(s3, bucket, key, buffer.getvalue())


def read_parquet(s3, bucket: str, key: str):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(get_bytes(s3, bucket, key)[0]))
