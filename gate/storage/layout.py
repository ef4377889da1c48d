"""Where a model version lives in a bucket, and which object keys are safe to turn into local paths.

Pure functions, no I/O. The layout is `s3://BUCKET/{prefix}/{name}/{version}/<files>`, with the
manifest object written last under the same folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from gate.errors import UsageError

MANIFEST_NAME = ".model-gate-manifest.json"
# Bucket names per the S3 naming rules (3-63 chars, lowercase letters, digits, dots, hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,254}$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, relative: str) -> str:
        return f"{self.prefix}{relative}"

    @property
    def manifest_key(self) -> str:
        return self.key(MANIFEST_NAME)


def check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise UsageError(f"bucket {bucket!r} is not a valid S3 bucket name "
                         "(3-63 lowercase letters, digits, dots or hyphens)")
    return bucket


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/some/prefix` -> S3Location, the prefix always ending with '/' so that
    `models/m/1` never matches `models/m/10/`."""
    if not uri.startswith("s3://"):
        raise UsageError(f"model URI {uri!r} is not an s3:// URI (expected s3://BUCKET/PREFIX)")
    rest = uri[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"model URI {uri!r} has no bucket (expected s3://BUCKET/PREFIX)")
    check_bucket(bucket)
    if "?" in prefix or "#" in prefix:
        raise UsageError(f"model URI {uri!r} must not contain '?' or '#'")
    prefix = prefix.strip("/")
    if not prefix:
        raise UsageError(f"model URI {uri!r} names a whole bucket; give the model version folder, "
                         "e.g. s3://BUCKET/models/NAME/VERSION")
    return S3Location(bucket, prefix + "/")


def check_segment(value: str, what: str) -> str:
    """A model name or version: one path segment, no separators or dot-only names."""
    if not _SEGMENT.match(value):
        raise UsageError(f"{what} {value!r} must be 1-255 letters, digits, '.', '_' or '-' "
                         "and start with a letter or digit")
    return value


def check_prefix(prefix: str) -> str:
    parts = [p for p in prefix.strip("/").split("/")]
    if prefix.strip("/") == "":
        return ""
    for part in parts:
        check_segment(part, "prefix segment")
    return "/".join(parts)


def version_location(bucket: str, name: str, version: str, prefix: str = "models") -> S3Location:
    check_bucket(bucket)
    check_segment(name, "model name")
    check_segment(version, "model version")
    base = check_prefix(prefix)
    return S3Location(bucket, f"{base}/{name}/{version}/" if base else f"{name}/{version}/")


def safe_relative_path(relative: str) -> PurePosixPath:
    """The local path for an object key below the version prefix, or UnsafeKey if it could
    escape the destination folder (absolute, '..', backslashes, drive letters, empty parts)."""
    if not relative:
        raise UnsafeKey(relative, "empty name")
    if "\\" in relative:
        raise UnsafeKey(relative, "contains a backslash")
    if "\x00" in relative:
        raise UnsafeKey(relative, "contains a NUL byte")
    if relative.startswith("/"):
        raise UnsafeKey(relative, "is an absolute path")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafeKey(relative, "has an empty, '.' or '..' path segment")
    if re.match(r"^[A-Za-z]:", parts[0]):
        raise UnsafeKey(relative, "starts with a drive letter")
    return PurePosixPath(*parts)


class UnsafeKey(ValueError):
    def __init__(self, relative: str, reason: str) -> None:
        super().__init__(f"{relative!r} {reason}")
        self.relative = relative
        self.reason = reason
