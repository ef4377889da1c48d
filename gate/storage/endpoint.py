"""Which S3 endpoint to talk to, validated before any request is made (pure, env passed in)."""

from __future__ import annotations

from urllib.parse import urlsplit

from gate.errors import UsageError

# Checked in this order after --endpoint-url; the first one set wins.
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
_FIX = "give it as http(s)://host[:port], e.g. http://127.0.0.1:9000; the bucket goes in s3://BUCKET/..."


def resolve_endpoint(explicit: str | None, env: dict[str, str], bucket: str | None = None) -> str | None:
    """The endpoint URL to use, or None for AWS itself."""
    if explicit:
        return check_endpoint(explicit, "--endpoint-url", bucket)
    for name in ENDPOINT_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            return check_endpoint(value, name, bucket)
    return None


def check_endpoint(url: str, source: str, bucket: str | None = None) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a non-numeric port
    except ValueError:
        raise UsageError(f"{source} {url!r} is not a valid URL", hint=_FIX) from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{source} {url!r} must start with http:// or https://", hint=_FIX)
    if not parts.hostname:
        raise UsageError(f"{source} {url!r} has no host", hint=_FIX)
    if parts.username or parts.password:
        # Credentials come from the AWS chain only; never from a URL that ends up in logs.
        raise UsageError(f"{source} must not contain credentials", hint=_FIX)
    if parts.path not in ("", "/"):
        raise UsageError(f"{source} {url!r} has a path {parts.path!r}; a bucket or folder does not belong "
                         "in the endpoint", hint=_FIX)
    if parts.query or parts.fragment:
        raise UsageError(f"{source} {url!r} must not have a query or fragment", hint=_FIX)
    if bucket and parts.hostname.lower().startswith(bucket.lower() + "."):
        raise UsageError(f"{source} {url!r} starts with the bucket name {bucket!r} (virtual-host style)",
                         hint=_FIX)
    netloc = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # IPv6 literal
        netloc = f"[{parts.hostname}]" + ("" if port is None else f":{port}")
    return f"{parts.scheme}://{netloc}"
