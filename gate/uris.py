"""Parse model URIs into typed references (pure: no I/O but an `exists` check on local paths).

Accepted forms:
  models:/NAME/3         one version
  models:/NAME@alias     the version an alias points to
  models:/NAME/latest    the newest version
  models:/NAME/Staging   the newest version in a legacy stage (deprecated)
  models:/m-<id>         an MLflow 3 logged model (registered with `model-gate register` first)
  runs:/RUN_ID/path      an artifact folder of a run
  s3://BUCKET/prefix     an object-store folder
  /path or ./path        a local folder (or file:// URI)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from gate.errors import UsageError

STAGES = ("None", "Staging", "Production", "Archived")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
LOCK_SUFFIX = ".model-gate-lock"  # registered models of that name are the gate's promotion locks
_NAME_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<ref>[^/]+)/?$")
_NAME_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")
# MLflow's own ids are m-<32 hex digits>; other stores may use other letters, never '/', '@' or spaces.
_LOGGED_MODEL = re.compile(r"^models:/(?P<id>m-[0-9A-Za-z_\-]+)/?$")
_SIGNED_NUMBER = re.compile(r"^[+-]?[0-9]+$")
MAX_VERSION = 2**63 - 1  # registry stores keep versions in (at most) signed 64-bit integer columns
FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or models:/m-<id> (a logged model)"
_RUN = re.compile(r"^runs:/(?P<run_id>[0-9A-Za-z]+)(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class RegistryVersion:
    name: str
    version: str  # a digit string


@dataclass(frozen=True)
class RegistryAlias:
    name: str
    alias: str


@dataclass(frozen=True)
class RegistryLatest:
    name: str
    stage: str | None  # None: newest version overall


@dataclass(frozen=True)
class LoggedModel:
    model_id: str


@dataclass(frozen=True)
class RunArtifact:
    run_id: str
    path: str


@dataclass(frozen=True)
class ObjectStore:
    uri: str


@dataclass(frozen=True)
class LocalFolder:
    path: Path


ModelRef = RegistryVersion | RegistryAlias | RegistryLatest | LoggedModel | RunArtifact | ObjectStore | LocalFolder


def parse_model_uri(uri: str) -> ModelRef:
    """Classify a model URI; raise UsageError naming the URI when it is none of the accepted forms."""
    text = uri.strip()
    if not text:
        raise UsageError("model URI is empty")
    if text.startswith("models:"):
        return _parse_models_uri(text)
    if text.startswith("runs:"):
        match = _RUN.match(text)
        if not match:
            raise UsageError(f"model URI {uri!r}: expected runs:/RUN_ID/ARTIFACT_PATH")
        return RunArtifact(run_id=match["run_id"], path=(match["path"] or "").strip("/"))
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise UsageError(f"model URI {uri!r}: expected s3://BUCKET/PREFIX")
        return ObjectStore(uri=text)
    if text.startswith("file://"):
        return LocalFolder(path=Path(unquote(urlparse(text).path)))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        scheme = text.split(":", 1)[0]
        raise UsageError(f"model URI {uri!r}: scheme {scheme}:// is not supported "
                         "(use models:/, runs:/, s3:// or a local folder)")
    return LocalFolder(path=Path(text).expanduser())


def _parse_models_uri(text: str) -> ModelRef:
    if not text.startswith("models:/") or text.startswith("models://"):
        raise UsageError(f"model URI {text!r}: expected {FORMS}")
    if match := _LOGGED_MODEL.match(text):
        return LoggedModel(model_id=match["id"])
    if match := _NAME_ALIAS.match(text):
        return RegistryAlias(name=unquote(match["name"]), alias=match["alias"])
    if match := _NAME_VERSION.match(text):
        name, ref = unquote(match["name"]), match["ref"]
        if ref.isdigit() and ref.isascii():
            number = int(ref)
            if number < 1:
                raise UsageError(f"model URI {text!r}: versions start at 1")
            if number > MAX_VERSION:
                raise UsageError(f"model URI {text!r}: version number too large (the largest is {MAX_VERSION})")
            return RegistryVersion(name=name, version=str(number))
        if _SIGNED_NUMBER.match(ref):
            raise UsageError(f"model URI {text!r}: {ref!r} is not a version number: versions are whole numbers "
                             "from 1, written without a sign")
        if ref == "latest":
            return RegistryLatest(name=name, stage=None)
        canonical = {s.lower(): s for s in STAGES}
        if ref.lower() in canonical:
            return RegistryLatest(name=name, stage=canonical[ref.lower()])
        hint = f"; for an alias write models:/{name}@{ref}" if alias_problem(ref) is None else ""
        raise UsageError(f"model URI {text!r}: {ref!r} is not a version number, 'latest' or a stage "
                         f"({', '.join(STAGES)}){hint}")
    if re.match(r"^models:/[^/@]+/?$", text):
        raise UsageError(f"model URI {text!r}: no version or alias (and not a logged model id m-...); "
                         f"expected {FORMS}")
    raise UsageError(f"model URI {text!r}: expected {FORMS}")


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot be a promotion alias, or None."""
    if RESERVED_ALIAS.match(alias):
        return f"alias {alias!r} is reserved by MLflow (latest and v<number>)"
    if not alias:
        return "alias cannot be empty"
    if len(alias) > 255:
        return f"alias {alias[:20]!r}... is {len(alias)} characters long; MLflow allows at most 255"
    if not ALIAS_PATTERN.match(alias):
        return f"alias {alias!r} may only contain letters, digits, '_' and '-'"
    return None


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot be a registered model that models:/ URIs address, or None."""
    if not name.strip():
        return "a registered model name cannot be empty"
    if name != name.strip():
        return f"registered model name {name!r} starts or ends with white space"
    for char, why in (("/", "models:/NAME/VERSION would split it"), ("@", "models:/NAME@ALIAS would split it")):
        if char in name:
            return f"registered model name {name!r} contains {char!r} ({why})"
    if any(ord(c) < 32 or unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp") for c in name):
        # zero-width and other invisible characters make a look-alike of another model's name
        return f"registered model name {name!r} contains a control or invisible character"
    if name.endswith(LOCK_SUFFIX):
        return f"registered model name {name!r} ends with {LOCK_SUFFIX}, which model-gate uses for its locks"
    return None


def require_model_name(name: str, option: str) -> str:
    """`name`, or a UsageError naming the option that gave it."""
    problem = model_name_problem(name)
    if problem:
        raise UsageError(f"{option}: {problem}")
    return name


def is_registry_ref(ref: ModelRef) -> bool:
    return isinstance(ref, (RegistryVersion, RegistryAlias, RegistryLatest))


def redact_uri(uri: str | None) -> str | None:
    """A URI without user:password@ and without query strings (which can hold tokens or signatures).

    Never raises: a URI too malformed to parse (a bad port, an unclosed IPv6 '[') is masked as text."""
    if not uri:
        return uri
    try:
        parsed = urlparse(uri)
        if not parsed.scheme or parsed.scheme in ("file",) or not parsed.netloc:
            return _redact_unparsed(uri)
        host = parsed.hostname or ""
        if ":" in host:  # an IPv6 address keeps its brackets
            host = f"[{host}]"
        if parsed.port:
            host = f"{host}:{parsed.port}"
    except ValueError:
        return _redact_unparsed(uri)
    if parsed.username or parsed.password:
        host = f"***@{host}"
    return parsed._replace(netloc=host, params="", query="", fragment="").geturl()


def _redact_unparsed(uri: str) -> str:
    """Mask user:password@ where urlparse finds no host (no scheme, "//user:pw@host", a malformed port)
    and drop the query (sqlite:///db?password=...); a plain path comes back as it was."""
    text = re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#@\s]*@", lambda m: (m.group(1) or "") + "***@", uri)
    return re.split(r"[?#]", text, maxsplit=1)[0] if "://" in text or text != uri else text


_HOST_PORT_SCHEMES = ("http", "https", "postgresql", "mysql", "mssql")


def server_uri_problem(uri: str) -> str | None:
    """What makes a tracking or registry URI unusable before anything is contacted (white space, an
    unclosed IPv6 '[', a port that is not a number or out of range, no host), or None. Pure."""
    if uri != uri.strip():
        return "starts or ends with white space"
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        return "contains a control character"
    if "://" not in uri:
        return None
    scheme = uri.split("://", 1)[0].split("+")[0].lower()
    if scheme not in _HOST_PORT_SCHEMES:  # databricks://PROFILE:PREFIX, sqlite:///path: no host and port
        return None
    try:
        parsed = urlparse(uri)
    except ValueError:  # urlparse refuses an unclosed '[' and (newer Pythons) a bracketed non-address
        netloc = uri.split("://", 1)[1].split("/", 1)[0]
        if "[" in netloc and "]" not in netloc:
            return "unclosed '[' in the host (an IPv6 address is written [::1] or [::1]:PORT)"
        return f"malformed IPv6 host {netloc.rpartition('@')[2]!r} (write [::1] or [::1]:PORT)"
    host_port = parsed.netloc.rpartition("@")[2]
    if any(c.isspace() for c in host_port):
        return f"white space in the host {host_port!r}"
    if host_port.startswith("["):
        bracketed, _, port = host_port[1:].partition("]")
        if not bracketed or not re.match(r"^[0-9A-Fa-f:.]+(%[\w.-]+)?$", bracketed) or (port and not port.startswith(":")):
            return f"malformed IPv6 host {host_port!r} (write [::1] or [::1]:PORT)"
        port = port[1:]
    elif "]" in host_port:
        return f"malformed host {host_port!r} (an IPv6 address is written [::1] or [::1]:PORT)"
    elif host_port.count(":") > 1:
        return f"malformed host {host_port!r} (an IPv6 address is written [::1] or [::1]:PORT)"
    else:
        host_port, _, port = host_port.partition(":")
    if scheme in ("http", "https") and not parsed.hostname:
        return "no host name"
    if port and not (port.isascii() and port.isdigit()):
        # Not echoed: "http://user:password" (no @host) puts the password where the port goes.
        return "the port after the host is not a number"
    if port and not 1 <= int(port) <= 65535:
        return f"port {int(port)} is out of range (1-65535)"
    return None


# Values known to be secret in this process: passwords and query values of the tracking URI.
_KNOWN_SECRETS: set[str] = set()
_SECRET_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                     "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "MODEL_GATE_KEY_PASSWORD")
_SECRET_QUERY = re.compile(r"([?&][^=&\s]*(?:token|sig|key|secret|pass|auth|cred|X-Amz-)[^=&\s]*=)[^&\s'\"]+",
                           re.IGNORECASE)


def remember_secrets_of(uri: str) -> None:
    """Mask this URI's password and query values wherever they turn up later (library logs too)."""
    try:
        parsed = urlparse(uri)
    except ValueError:  # too malformed to use: the Registry refuses it, scrub_secrets still masks user:pass@
        return
    values = [value for _, _, value in (part.partition("=") for part in parsed.query.split("&"))]
    for secret, shortest in [(parsed.password or "", 4)] + [(value, 6) for value in values]:
        if len(secret) >= shortest:
            _KNOWN_SECRETS.update({secret, unquote(secret)})


def scrub_secrets(text: str, limit: int = 500) -> str:
    """Free text (an exception message, a library's log line) without URL credentials, signed or
    token-like query parameters, or any value known to be secret."""
    import os

    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@", r"\1***@", text)
    text = _SECRET_QUERY.sub(r"\1***", text)
    known = _KNOWN_SECRETS | {os.environ[v] for v in _SECRET_VARIABLES if len(os.environ.get(v, "")) >= 4}
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:limit]
