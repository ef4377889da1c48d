"""OpenSSF Model Signing v1.0 documents: build and parse bundles and their in-toto statement.

Pure: bytes and dicts in, bytes and dataclasses out; no files, no keys.
Layers (spec Appendix B): Sigstore bundle v0.3 > DSSE envelope > in-toto
Statement v1 > OMS predicate. Parsing errors are BundleError with a message
that names the field, so a verifier can say exactly what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gate.signing.hashing import SUPPORTED
from gate.signing.paths import DEFAULT_IGNORES, canonical_name, split_shard_name

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
DEPRECATED_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
_DIGEST_BYTES = {"sha256": 32, "blake2b": 64, "blake3": 32}


class BundleError(ValueError):
    """The signature file is not a well-formed OMS bundle (message names what is wrong)."""


# --- Sigstore bundle (only the parts OMS uses; unknown fields are tolerated as the spec asks) ---


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Cert(_Loose):
    rawBytes: str = Field(min_length=1)


class _Chain(_Loose):
    certificates: list[_Cert] = Field(min_length=1)


class _PublicKeyId(_Loose):
    hint: str | None = None
    rawBytes: str | None = None


class _Material(_Loose):
    publicKey: _PublicKeyId | None = None
    x509CertificateChain: _Chain | None = None
    certificate: _Cert | None = None
    tlogEntries: list[dict[str, Any]] | None = None


class _Signature(_Loose):
    sig: str = Field(min_length=1)
    keyid: str | None = None


class _Envelope(_Loose):
    payload: str = Field(min_length=1)
    payloadType: str
    signatures: list[_Signature] = Field(min_length=1)


class _Bundle(_Loose):
    mediaType: str
    verificationMaterial: _Material
    dsseEnvelope: _Envelope


@dataclass(frozen=True)
class Bundle:
    method: str  # key | certificate | sigstore
    key_hint: str | None
    key_raw: bytes | None  # legacy bundles carry the key itself
    certificates: list[bytes]  # DER, leaf first (certificate method)
    payload: bytes
    signature: bytes


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"malformed bundle: {where} is not valid base64") from None


def parse_bundle(data: bytes) -> Bundle:
    if not data.strip():
        raise BundleError("malformed bundle: the signature file is empty")
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"malformed or truncated bundle: not JSON ({error})") from None
    try:
        bundle = _Bundle.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "bundle"
        raise BundleError(f"malformed bundle: {where}: {first['msg'].lower()}") from None
    if not bundle.mediaType.startswith("application/vnd.dev.sigstore.bundle"):
        raise BundleError(f"malformed bundle: mediaType {bundle.mediaType!r} is not a Sigstore bundle")
    env = bundle.dsseEnvelope
    if env.payloadType != PAYLOAD_TYPE:
        raise BundleError(f"malformed bundle: dsseEnvelope.payloadType is {env.payloadType!r}, not {PAYLOAD_TYPE}")
    if len(env.signatures) != 1:
        raise BundleError(f"malformed bundle: expected one DSSE signature, found {len(env.signatures)}")
    material = bundle.verificationMaterial
    if material.publicKey is not None:
        if not (material.publicKey.hint or material.publicKey.rawBytes):
            raise BundleError("malformed bundle: verificationMaterial.publicKey has neither hint nor rawBytes")
        method = "key"
    elif material.x509CertificateChain is not None:
        method = "certificate"
    elif material.certificate is not None:
        if not material.tlogEntries:
            raise BundleError("malformed bundle: a sigstore bundle needs verificationMaterial.tlogEntries")
        method = "sigstore"
    else:
        raise BundleError("malformed bundle: verificationMaterial has no publicKey, x509CertificateChain or certificate")
    certs: list[bytes] = []
    if material.x509CertificateChain is not None:
        certs = [
            _b64(c.rawBytes, f"x509CertificateChain.certificates[{i}]")
            for i, c in enumerate(material.x509CertificateChain.certificates)
        ]
    elif material.certificate is not None:
        certs = [_b64(material.certificate.rawBytes, "certificate.rawBytes")]
    key_raw = None
    if material.publicKey is not None and material.publicKey.rawBytes:
        key_raw = _b64(material.publicKey.rawBytes, "publicKey.rawBytes")
    return Bundle(
        method=method,
        key_hint=material.publicKey.hint if material.publicKey else None,
        key_raw=key_raw,
        certificates=certs,
        payload=_b64(env.payload, "dsseEnvelope.payload"),
        signature=_b64(env.signatures[0].sig, "dsseEnvelope.signatures[0].sig"),
    )


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: the exact bytes that are signed."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def assemble_bundle(payload: bytes, signature: bytes, material: dict[str, Any]) -> bytes:
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**material, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return (json.dumps(bundle, indent=2) + "\n").encode()


def key_material(hint: str) -> dict[str, Any]:
    return {"publicKey": {"hint": hint}}


def chain_material(certificates_der: list[bytes]) -> dict[str, Any]:
    return {
        "x509CertificateChain": {
            "certificates": [{"rawBytes": base64.b64encode(c).decode()} for c in certificates_der]
        }
    }


# --- the in-toto statement and OMS predicate ---


@dataclass(frozen=True)
class Serialization:
    method: str  # files | shards
    hash_type: str
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "hash_type": self.hash_type}
        if self.method == "shards":
            data["shard_size"] = self.shard_size
        data["allow_symlinks"] = self.allow_symlinks
        if self.ignore_paths:
            data["ignore_paths"] = list(self.ignore_paths)
        return data


@dataclass(frozen=True)
class Manifest:
    model_name: str
    serialization: Serialization
    resources: dict[str, str]  # resource name -> hex digest

    def files(self) -> dict[str, tuple[tuple[int, int, str], ...] | str]:
        """Per file: its digest (files method) or its ordered (start, end, digest) shards."""
        if self.serialization.method == "files":
            return dict(self.resources)
        shards: dict[str, list[tuple[int, int, str]]] = {}
        for name, digest in self.resources.items():
            path, start, end = split_shard_name(name)
            shards.setdefault(path, []).append((start, end, digest))
        return {path: tuple(sorted(items)) for path, items in shards.items()}


def root_digest(digests_in_order: list[str]) -> str:
    hasher = hashlib.sha256()
    for digest in digests_in_order:
        hasher.update(bytes.fromhex(digest))
    return hasher.hexdigest()


def build_statement(manifest: Manifest) -> bytes:
    names = sorted(manifest.resources)  # code point order, as the spec requires
    alg = manifest.serialization.hash_type
    resources = [{"name": n, "digest": manifest.resources[n], "algorithm": alg} for n in names]
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": manifest.model_name, "digest": {"sha256": root_digest([r["digest"] for r in resources])}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"resources": resources, "serialization": manifest.serialization.to_dict()},
    }
    return json.dumps(statement, indent=2).encode()


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise BundleError(f"malformed statement: {where}{key} is missing")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"malformed statement: {where}{key} has the wrong type")
    return value


def parse_statement(payload: bytes) -> Manifest:
    """Validate the signed statement (spec §8.3) and return its manifest."""
    try:
        statement = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError("malformed statement: the DSSE payload is not JSON") from None
    if _need(statement, "_type", str, "") != STATEMENT_TYPE:
        raise BundleError(f"malformed statement: _type is {statement['_type']!r}, not {STATEMENT_TYPE}")
    predicate_type = _need(statement, "predicateType", str, "")
    if predicate_type == DEPRECATED_PREDICATE_TYPE:
        raise BundleError(f"wrong predicate type: {predicate_type} (deprecated v0.1 format, not supported)")
    if predicate_type != PREDICATE_TYPE:
        raise BundleError(f"wrong predicate type: {predicate_type!r}, expected {PREDICATE_TYPE}")
    subjects = _need(statement, "subject", list, "")
    if len(subjects) != 1:
        raise BundleError(f"malformed statement: expected one subject, found {len(subjects)}")
    model_name = _need(subjects[0], "name", str, "subject[0].")
    subject_digest = _need(_need(subjects[0], "digest", dict, "subject[0]."), "sha256", str, "subject[0].digest.")
    predicate = _need(statement, "predicate", dict, "")
    ser = _need(predicate, "serialization", dict, "predicate.")
    method = _need(ser, "method", str, "serialization.")
    hash_type = _need(ser, "hash_type", str, "serialization.")
    allow_symlinks = _need(ser, "allow_symlinks", bool, "serialization.")
    if method not in ("files", "shards"):
        raise BundleError(f"unsupported serialization method {method!r} (files or shards)")
    if hash_type not in SUPPORTED:
        raise BundleError(f"unsupported hash algorithm {hash_type!r} (supported: {', '.join(SUPPORTED)})")
    shard_size = None
    if method == "shards":
        shard_size = _need(ser, "shard_size", int, "serialization.")
        if shard_size <= 0:
            raise BundleError("malformed statement: serialization.shard_size must be positive")
    ignore_paths = ser.get("ignore_paths", [])
    if not isinstance(ignore_paths, list) or not all(isinstance(p, str) and p for p in ignore_paths):
        raise BundleError("malformed statement: serialization.ignore_paths must be a list of paths")
    resources_raw = _need(predicate, "resources", list, "predicate.")
    if not resources_raw:
        raise BundleError("malformed statement: predicate.resources is empty")
    resources: dict[str, str] = {}
    order: list[str] = []
    for i, res in enumerate(resources_raw):
        where = f"resources[{i}]."
        name = _need(res, "name", str, where)
        digest = _need(res, "digest", str, where).lower()
        algorithm = _need(res, "algorithm", str, where)
        if algorithm != hash_type:
            raise BundleError(f"unsupported hash algorithm {algorithm!r} for {name} (hash_type is {hash_type})")
        try:
            raw_digest = bytes.fromhex(digest)
        except ValueError:
            raise BundleError(f"malformed statement: {where}digest is not hex") from None
        if len(raw_digest) != _DIGEST_BYTES[hash_type]:
            raise BundleError(f"malformed statement: {where}digest has the wrong length for {hash_type}")
        path = split_shard_name(name)[0] if method == "shards" else name
        try:
            if canonical_name(path) != path:
                raise ValueError(f"{path!r} is not canonical")
        except ValueError as error:
            raise BundleError(f"malformed statement: resource name {error}") from None
        if name in resources:
            raise BundleError(f"malformed statement: resource {name} is listed twice")
        resources[name] = digest
        order.append(digest)
    if root_digest(order) != subject_digest.lower():
        raise BundleError("malformed statement: subject digest does not match the resources (root digest)")
    return Manifest(
        model_name=model_name,
        serialization=Serialization(method, hash_type, allow_symlinks, shard_size, tuple(ignore_paths)),
        resources=resources,
    )


def signing_ignores(user: list[str], signature_name: str | None) -> tuple[str, ...]:
    """The ignore list a signer records: OMS defaults, the user's entries, the signature itself."""
    entries = list(DEFAULT_IGNORES) + list(user)
    if signature_name:
        entries.append(signature_name)
    return tuple(dict.fromkeys(entries))
