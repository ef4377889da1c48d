"""Verify a model against its signature and name every difference.

Never raises for a bad model or signature: the result lists the problems.
Raises UsageError only for bad input from the user (unreadable trusted keys...).
Nothing in the model is loaded or executed; files are only hashed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gate.signing import detached, oms
from gate.signing.certs import ChainError, verify_chain
from gate.signing.compare import compare
from gate.signing.hashing import FileChanged, Job, hash_jobs
from gate.signing.keys import PublicKey, ecdsa_hash, fingerprint, oms_hint
from gate.signing.modelhash import hash_model
from gate.signing.paths import DEFAULT_IGNORES, canonical_name
from gate.signing.signer import detached_targets, relative_inside
from gate.signing.walk import list_model_files


@dataclass
class Trust:
    public_keys: list[PublicKey] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)  # "sha256:<hex>" of DER SubjectPublicKeyInfo
    roots: list[x509.Certificate] = field(default_factory=list)


@dataclass
class Verification:
    method: str
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # covered files (relative POSIX paths)
    key_fingerprint: str | None = None
    bytes_hashed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_carried_key(raw: bytes) -> PublicKey | None:
    for loader in (serialization.load_der_public_key, serialization.load_pem_public_key):
        try:
            return loader(raw)  # type: ignore[return-value]
        except ValueError:
            continue
    return None


def _signing_key(bundle: oms.Bundle, method: str, trust: Trust) -> PublicKey:
    """The trusted key the bundle claims to be signed with; raises ValueError naming why not."""
    if bundle.method == "sigstore":
        raise ValueError(
            "the signature is Sigstore keyless (Fulcio/Rekor), which this gate cannot verify offline; "
            "sign with a key or certificate"
        )
    if bundle.method != method:
        raise ValueError(f"the signature uses the {bundle.method} method, but {method} was required")
    if method == "certificate":
        key = verify_chain(bundle.certificates, trust.roots)
        if trust.fingerprints and fingerprint(key) not in trust.fingerprints:
            raise ValueError(f"wrong key: certificate key {fingerprint(key)} is not among the trusted fingerprints")
        return key
    trusted_ec = [k for k in trust.public_keys if isinstance(k, ec.EllipticCurvePublicKey)]
    if bundle.key_hint:
        for key in trusted_ec:
            if oms_hint(key) == bundle.key_hint:
                return key
        carried = _load_carried_key(bundle.key_raw) if bundle.key_raw else None
        if carried is not None and fingerprint(carried) in trust.fingerprints:
            return carried
        if not trusted_ec and trust.fingerprints:
            # Not a wrong key: a hint cannot be matched against fingerprints at all.
            raise ValueError(
                f"cannot check the key: the signature names its key only by hint {bundle.key_hint}, and a hint "
                "cannot be matched to key_fingerprints; add the public key file to public_keys"
            )
        # Hints are SHA-256 of the PEM (model_signing's form), fingerprints of the DER: show like with like.
        trusted_hints = ", ".join(f"{oms_hint(k)} ({fingerprint(k)})" for k in trusted_ec)
        raise ValueError(
            f"wrong key: the signature names key hint {bundle.key_hint}, which is not a trusted key "
            f"(trusted keys' hints: {trusted_hints or 'none, no EC key file given'})"
        )
    carried = _load_carried_key(bundle.key_raw or b"")
    if carried is None:
        raise ValueError("malformed bundle: publicKey.rawBytes is not a public key")
    trusted = {fingerprint(k) for k in trusted_ec} | trust.fingerprints
    if fingerprint(carried) not in trusted:
        raise ValueError(f"wrong key: the signature was made with {fingerprint(carried)}, which is not trusted")
    return carried


def verify_oms(
    model: Path,
    signature: Path,
    trust: Trust,
    *,
    method: str = "key",
    ignore: list[str] | None = None,
    precomputed: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> Verification:
    started = time.perf_counter()
    result = Verification(method=method)
    try:
        bundle = oms.parse_bundle(signature.read_bytes())
        key = _signing_key(bundle, method, trust)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("wrong key: OMS signatures are ECDSA; the trusted key is not an EC key")
        result.key_fingerprint = fingerprint(key)
        try:
            key.verify(bundle.signature, oms.pae(bundle.payload), ec.ECDSA(ecdsa_hash(key)))
        except InvalidSignature:
            raise ValueError(
                f"invalid signature: the bundle does not verify with {fingerprint(key)} (altered bundle or wrong key)"
            ) from None
        manifest = oms.parse_statement(bundle.payload)
    except OSError as error:
        result.problems.append(f"cannot read the signature {signature}: {error.strerror}")
        return result
    except (oms.BundleError, ChainError, ValueError) as error:
        result.problems.append(str(error))
        return result

    ignores: list[str] = list(DEFAULT_IGNORES)
    if model.is_dir():
        for entry in [*manifest.serialization.ignore_paths, *(ignore or [])]:
            try:
                ignores.append(canonical_name(entry))
            except ValueError:
                continue  # an ignore entry outside the model cannot exclude anything inside it
        sig_name = relative_inside(model, signature)
        if sig_name:
            ignores.append(sig_name)
    else:
        ignores = []
    listing = list_model_files(model, ignores, allow_symlinks=manifest.serialization.allow_symlinks)
    result.problems.extend(listing.problems)
    if not listing.files and not listing.problems:
        result.problems.append("empty model: no files to verify")
    try:
        hashed = hash_model(listing.files, manifest.serialization, precomputed=precomputed, workers=workers)
    except (FileChanged, OSError) as error:
        result.problems.append(f"could not hash the model: {error}")
        return result
    actual = oms.Manifest(manifest.model_name, manifest.serialization, hashed.resources)
    result.problems.extend(compare(manifest.files(), actual.files()))
    result.files = listing.names
    result.bytes_hashed = hashed.bytes_read
    result.seconds = time.perf_counter() - started
    return result


def verify_detached(
    model: Path,
    trust: Trust,
    *,
    ignore: list[str] | None = None,
    precomputed: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> Verification:
    """Every covered file needs a `<file>.sig` that verifies with a trusted RSA key."""
    started = time.perf_counter()
    result = Verification(method="detached")
    keys = [k for k in trust.public_keys if isinstance(k, rsa.RSAPublicKey)]
    if not keys:
        result.problems.append("wrong key: detached signatures need a trusted RSA public key")
        return result
    if model.is_dir():
        listing = list_model_files(model, [*DEFAULT_IGNORES, *(ignore or [])])
        covered, _ = detached_targets(listing)
        sig_paths = [Path(f.path + detached.SUFFIX) for f in covered]
    else:
        listing = list_model_files(model, [])
        covered = listing.files
        sig_paths = [Path(str(model) + detached.SUFFIX)]
    result.problems.extend(listing.problems)
    if not covered and not listing.problems:
        result.problems.append("empty model: no files to verify")
    to_hash = [f for f in covered if not (precomputed and precomputed.get(f.name))]
    try:
        digests = dict(
            zip(
                [f.name for f in to_hash],
                hash_jobs([Job(f.path) for f in to_hash], "sha256", sizes=[f.size for f in to_hash], workers=workers),
            )
        )
    except (FileChanged, OSError) as error:
        result.problems.append(f"could not hash the model: {error}")
        return result
    for f, sig_path in zip(covered, sig_paths):
        digest = digests.get(f.name) or bytes.fromhex(precomputed[f.name])  # type: ignore[index]
        try:
            sig = sig_path.read_bytes()
        except OSError:
            result.problems.append(f"unsigned: {f.name} (no {f.name}{detached.SUFFIX})")
            continue
        good = next((k for k in keys if detached.verify_digest(k, sig, digest)), None)
        if good is None:
            result.problems.append(f"invalid signature: {f.name} (modified, or signed by an untrusted key)")
        elif result.key_fingerprint is None:
            result.key_fingerprint = fingerprint(good)
    result.files = sorted(f.name for f in covered)
    result.bytes_hashed = sum(f.size for f in to_hash)
    result.seconds = time.perf_counter() - started
    return result
