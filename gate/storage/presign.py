"""Presigned GET URLs for inference servers, with bounded expiry and GitHub Actions masking."""

from __future__ import annotations

from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from gate.errors import RejectedError, UsageError
from gate.storage.client import make_client, translate
from gate.storage.layout import S3Location, version_location
from gate.storage.manifest import parse_manifest
from gate.storage.upload import object_exists

MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer than 7 days


def check_expires(expires: int) -> int:
    if not 1 <= expires <= MAX_EXPIRES_S:
        raise UsageError(f"--expires {expires} is outside 1..{MAX_EXPIRES_S} seconds "
                         "(SigV4 presigned URLs live at most 7 days)")
    return expires


def presign_model_file(*, bucket: str, name: str, version: str, file: str | None = None, prefix: str = "models",
                       expires: int = 3600, endpoint_url: str | None = None, client: Any = None) -> str:
    """A GET URL for one file of a complete model version (one whose manifest exists and lists it)."""
    check_expires(expires)
    location = version_location(bucket, name, version, prefix)
    client = client or make_client(endpoint_url, bucket=bucket)
    relative = _pick_file(client, location, file)
    try:
        return client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": location.key(relative)}, ExpiresIn=expires)
    except Exception as error:
        raise translate(error, f"s3://{bucket}/{location.key(relative)}") from None


def _pick_file(client: Any, location: S3Location, file: str | None) -> str:
    where = f"s3://{location.bucket}/{location.manifest_key}"
    if not object_exists(client, location.bucket, location.manifest_key):
        raise RejectedError(f"{location.uri} has no manifest: the version does not exist or its upload was "
                            "interrupted", hint="upload it with model-gate upload")
    try:
        data = client.get_object(Bucket=location.bucket, Key=location.manifest_key)["Body"].read()
    except Exception as error:
        raise translate(error, where) from None
    paths = [f.path for f in parse_manifest(data, where).files]
    if file is None:
        if len(paths) == 1:
            return paths[0]
        raise UsageError(f"{location.uri} holds {len(paths)} files; choose one with --file",
                         hint=", ".join(paths[:10]) + (" ..." if len(paths) > 10 else ""))
    relative = file.strip("/")
    if relative not in paths:
        raise UsageError(f"--file {file!r} is not part of {location.uri}",
                         hint="files: " + ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else ""))
    return relative


def github_mask_commands(url: str) -> list[str]:
    """`::add-mask::` lines that hide the URL, and its signature on its own, in GitHub Actions logs."""
    secrets = [url]
    query = parse_qs(urlsplit(url).query)
    for key in ("X-Amz-Signature", "X-Amz-Security-Token", "Signature"):
        secrets.extend(query.get(key, []))
    return [f"::add-mask::{value}" for value in secrets]


def emit_masks(url: str, env: dict[str, str], stream: TextIO) -> bool:
    """Register the masks before the URL is printed anywhere (only inside GitHub Actions)."""
    if env.get("GITHUB_ACTIONS") != "true":
        return False
    for line in github_mask_commands(url):
        stream.write(line + "\n")
    stream.flush()
    return True
