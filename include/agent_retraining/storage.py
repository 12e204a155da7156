"""S3 access shared by every stage.

Tasks hand data to each other only through S3, so these helpers are the whole
I/O surface: plain bytes, JSON, Parquet, and the two conditional writes
(`If-None-Match: *` for immutable objects, `If-Match: <etag>` for the manifest)
that make deploys safe when runs race. Every call turns botocore's errors into
one of three kinds, each naming operation, bucket and key: S3Unavailable
(throttling, 5xx, the network: the task retries), ObjectMissing (404) and
S3Refused (403, 412, ...: the task fails at once).
"""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import ProtocolError


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists already, or changed since it was read."""


class S3Error(Exception):
    """An S3 call that failed, naming the call, bucket and key, so an operator knows what to look at."""

    def __init__(self, operation: str, bucket: str, key: str, status: int, code: str, message: str):
        answer = " ".join(str(part) for part in (status, code) if part)
        super().__init__(f"{operation} s3://{bucket}/{key} failed: {answer}: {message}")
        self.operation, self.bucket, self.key, self.status, self.code = operation, bucket, key, status, code


class S3Unavailable(S3Error):
    """Throttling, a 5xx or a broken connection: worth retrying with backoff (the task retry policy does)."""


class S3Refused(S3Error):
    """A permanent answer (403, an unexpected 404, 412, ...): retrying would only repeat it, so the task fails."""


class ObjectMissing(S3Refused):
    """404: the object (or bucket) is not there. Callers for which absence is normal catch this one."""


# What the network does to a call (refused, reset, timed out, cut short); other botocore errors (no
# credentials, a bad parameter) are mistakes that no retry mends.
_NETWORK_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError, ProtocolError)
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                    "ServiceUnavailable", "RequestTimeTooSkewed"}  # fmt: skip


def classify(error: Exception, operation: str, bucket: str, key: str) -> S3Error:
    """The S3Error subclass an error from botocore means."""
    if not isinstance(error, ClientError):
        kind = S3Unavailable if isinstance(error, _NETWORK_ERRORS) else S3Refused
        return kind(operation, bucket, key, 0, type(error).__name__, str(error))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
    if code == "NoSuchBucket":  # a wrong bucket name is a setup error, never "no manifest yet"
        return S3Refused(operation, bucket, key, status, code, message)
    if status == 404 or code in ("NoSuchKey", "404"):
        return ObjectMissing(operation, bucket, key, status, code, message)
    if status == 429 or status >= 500 or code in _TRANSIENT_CODES:
        return S3Unavailable(operation, bucket, key, status, code, message)
    return S3Refused(operation, bucket, key, status, code, message)


@contextmanager
def s3_call(operation: str, bucket: str, key: str):
    """Translate botocore's errors into S3Unavailable / S3Refused / ObjectMissing naming bucket and key."""
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except (ClientError, BotoCoreError, ProtocolError) as error:
        raise classify(error, operation, bucket, key) from error


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


def get_bytes(s3, bucket: str, key: str) -> tuple[bytes, str]:
    """Object body and its ETag (the token a later `If-Match` write needs)."""
    with s3_call("GetObject", bucket, key):
        response = s3.get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response["ETag"]


def exists(s3, bucket: str, key: str) -> bool:
    try:
        with s3_call("HeadObject", bucket, key):
            s3.head_object(Bucket=bucket, Key=key)
    except ObjectMissing:
        return False
    return True


def put_bytes(s3, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> str:
    with s3_call("PutObject", bucket, key):
        return s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)["ETag"]


def _conditional_put(s3, bucket: str, key: str, body: bytes, lost: str, **condition) -> str:
    try:
        with s3_call("PutObject", bucket, key):
            return s3.put_object(Bucket=bucket, Key=key, Body=body, **condition)["ETag"]
    except S3Refused as error:
        if error.status in (409, 412):
            raise PreconditionFailed(f"s3://{bucket}/{key} {lost}") from error
        raise


def put_if_absent(s3, bucket: str, key: str, body: bytes) -> str:
    """Write once: raises PreconditionFailed when the key exists (artifacts are immutable)."""
    return _conditional_put(s3, bucket, key, body, "exists already", IfNoneMatch="*")


def put_if_match(s3, bucket: str, key: str, body: bytes, etag: str | None) -> str:
    """Compare-and-swap: replace only the version read with `etag` (None: only if absent)."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    return _conditional_put(
        s3, bucket, key, body, "changed since it was read", ContentType="application/json", **condition
    )


def delete(s3, bucket: str, key: str) -> None:
    with s3_call("DeleteObject", bucket, key):
        s3.delete_object(Bucket=bucket, Key=key)


def delete_prefix(s3, bucket: str, prefix: str) -> int:
    """Delete every object under a prefix; returns how many there were."""
    objects = list_keys(s3, bucket, prefix)
    for obj in objects:
        delete(s3, bucket, obj["key"])
    return len(objects)


def list_keys(s3, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under a prefix, with key, size and ETag, in key order."""
    objects = []
    with s3_call("ListObjectsV2", bucket, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend({"key": o["Key"], "size": o["Size"], "etag": o["ETag"]} for o in page.get("Contents", []))
    return sorted(objects, key=lambda o: o["key"])


def list_folders(s3, bucket: str, prefix: str) -> list[str]:
    """The "folders" right under a prefix (common prefixes up to the next `/`), in key order, without listing
    the objects inside them."""
    folders = []
    with s3_call("ListObjectsV2", bucket, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return sorted(folders)


def read_json(s3, bucket: str, key: str) -> Any:
    return json.loads(get_bytes(s3, bucket, key)[0])


def read_json_or_none(s3, bucket: str, key: str) -> Any:
    try:
        return read_json(s3, bucket, key)
    except ObjectMissing:
        return None


def strict_json(value: Any) -> bytes:
    """JSON that every parser accepts: a NaN or infinity is a bug upstream, so it raises instead of writing `NaN`."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, allow_nan=False).encode()


def write_json(s3, bucket: str, key: str, value: Any) -> str:
    return put_bytes(s3, bucket, key, strict_json(value), "application/json")


def write_parquet(s3, bucket: str, key: str, table) -> str:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return put_bytes(s3, bucket, key, buffer.getvalue())


def read_parquet(s3, bucket: str, key: str):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(get_bytes(s3, bucket, key)[0]))
