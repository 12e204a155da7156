"""How S3 errors are told apart: what the task retries, what fails it at once, what means "not there"."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from agent_retraining.storage import ObjectMissing, S3Refused, S3Unavailable, classify, get_bytes, put_bytes


def _client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error(503, "SlowDown"), S3Unavailable),
        (_client_error(500, "InternalError"), S3Unavailable),
        (_client_error(429, "TooManyRequests"), S3Unavailable),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), S3Unavailable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), S3Unavailable),
        (_client_error(403, "AccessDenied"), S3Refused),
        (_client_error(412, "PreconditionFailed"), S3Refused),
        (_client_error(404, "NoSuchKey"), ObjectMissing),
        (_client_error(404, "NoSuchBucket"), S3Refused),  # a wrong bucket name is not "no manifest yet"
        (NoCredentialsError(), S3Refused),  # a setup mistake no retry mends
    ],
)
def test_each_error_is_classified_and_names_the_object(error, kind):
    classified = classify(error, "GetObject", "agent-models", "bot/manifest.json")
    assert type(classified) is kind
    assert str(classified).startswith("GetObject s3://agent-models/bot/manifest.json failed: ")


def test_the_real_server_answers_a_missing_object_and_a_wrong_password_as_expected(s3, buckets):
    import boto3

    from agent_retraining.storage import s3_client_from_env

    put_bytes(s3, buckets.artifacts, "storage-test/present", b"x")
    with pytest.raises(ObjectMissing, match=f"s3://{buckets.artifacts}/storage-test/absent"):
        get_bytes(s3, buckets.artifacts, "storage-test/absent")
    intruder = s3_client_from_env()
    intruder = boto3.client("s3", endpoint_url=intruder.meta.endpoint_url, region_name=intruder.meta.region_name,
                            aws_access_key_id="nobody", aws_secret_access_key="wrong-secret")  # fmt: skip
    with pytest.raises(S3Refused) as refused:
        get_bytes(intruder, buckets.artifacts, "storage-test/present")
    assert not isinstance(refused.value, ObjectMissing)
    assert refused.value.status == 403
