"""A boto3 S3 client with the project's settings, and S3 errors turned into gate errors.

boto3 is imported inside functions so that `model-gate --help` stays fast.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gate.errors import GateError, StorageError, UsageError
from gate.storage.endpoint import resolve_endpoint

DEFAULT_MAX_ATTEMPTS = 6  # botocore "standard" retries: exponential backoff with jitter on 5xx/throttling

_THROTTLING = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
               "ServiceUnavailable", "503"}


def make_client(endpoint_url: str | None = None, *, bucket: str | None = None, max_pool: int = 16,
                env: dict[str, str] | None = None) -> Any:
    """An S3 client: validated endpoint, credentials from the standard AWS chain only."""
    import boto3
    from botocore.config import Config

    env = dict(os.environ) if env is None else env
    endpoint = resolve_endpoint(endpoint_url, env, bucket)
    attempts = _max_attempts(env)
    # botocore logs request headers (signatures) at DEBUG; keep them out of -vv output.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    session = boto3.session.Session()
    region = session.region_name or "us-east-1"
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": attempts, "mode": "standard"},
        max_pool_connections=max_pool,
        connect_timeout=10,
        read_timeout=60,
        # Custom endpoints (MinIO, moto, Ceph) rarely resolve bucket subdomains.
        s3={"addressing_style": "path"} if endpoint else {},
        request_checksum_calculation="when_required",  # we send our own SHA-256, never a default CRC
        response_checksum_validation="when_required",  # we verify ourselves, in the same pass
    )
    return session.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _max_attempts(env: dict[str, str]) -> int:
    raw = env.get("AWS_MAX_ATTEMPTS", "").strip()
    if not raw:
        return DEFAULT_MAX_ATTEMPTS
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"AWS_MAX_ATTEMPTS {raw!r} is not a whole number") from None
    if not 1 <= value <= 20:
        raise UsageError(f"AWS_MAX_ATTEMPTS {value} is outside 1..20")
    return value


def error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or str(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def translate(error: BaseException, where: str) -> GateError:
    """A one-line gate error for a botocore/network failure at `where` (an s3:// URI)."""
    from botocore import exceptions as bx

    if isinstance(error, GateError):
        return error
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError(f"{where}: no AWS credentials found",
                            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance role")
    if isinstance(error, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return StorageError(f"{where}: cannot reach the S3 endpoint ({type(error).__name__})",
                            hint="check --endpoint-url / AWS_ENDPOINT_URL and the network")
    if isinstance(error, bx.ClientError):
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",):
            bucket = error.response.get("Error", {}).get("BucketName") or where
            return StorageError(f"bucket {bucket} does not exist ({where})")
        if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageError(f"{where}: access denied ({code})",
                                hint="check the credentials and that the IAM policy allows this action")
        if code in _THROTTLING or status == 503:
            return StorageError(f"{where}: the store kept throttling ({code or status}) after retries with backoff",
                                hint="retry later or raise AWS_MAX_ATTEMPTS")
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"{where}: object not found")
        if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
            return StorageError(f"{where}: the store rejected the upload checksum ({code}); data changed in transit")
        return StorageError(f"{where}: S3 error {code or status}")
    if isinstance(error, bx.BotoCoreError | OSError):
        return StorageError(f"{where}: transfer failed ({type(error).__name__})")
    return StorageError(f"{where}: unexpected storage failure ({type(error).__name__})")


def is_transient(error: BaseException) -> bool:
    """Network failures after which re-sending the same range or part can succeed.

    HTTP errors (5xx, throttling) are not listed: botocore already retried those with backoff.
    What it cannot retry is a body cut off after the response started, so that is handled here.
    """
    from botocore import exceptions as bx
    from urllib3 import exceptions as ux

    if isinstance(error, bx.ClientError):
        return False
    return isinstance(error, bx.ResponseStreamingError | bx.IncompleteReadError | bx.ConnectionError
                      | bx.ReadTimeoutError | ux.ProtocolError | ux.ReadTimeoutError | ConnectionError
                      | TimeoutError)
