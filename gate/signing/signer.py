"""Sign a model: an OMS bundle for a folder (key or certificate), or detached `<file>.sig` files."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gate.errors import UsageError
from gate.signing import detached, oms
from gate.signing.hashing import Job, hash_jobs
from gate.signing.keys import PrivateKey, ecdsa_hash, fingerprint, oms_hint
from gate.signing.modelhash import hash_model
from gate.signing.paths import DEFAULT_IGNORES
from gate.signing.walk import Listing, list_model_files


@dataclass(frozen=True)
class Signed:
    signatures: list[Path]
    files: list[str]
    key_fingerprint: str
    bytes_hashed: int


def relative_inside(model: Path, path: Path) -> str | None:
    """`path` as a model-relative name when it lies inside the model folder, else None."""
    try:
        return path.resolve().relative_to(model.resolve()).as_posix()
    except ValueError:
        return None


def _listing_or_fail(model: Path, ignores: tuple[str, ...]) -> Listing:
    if not model.exists():
        raise UsageError(f"model path {model} does not exist")
    listing = list_model_files(model, ignores)
    if listing.problems:
        raise UsageError(f"cannot sign {model}: " + "; ".join(listing.problems))
    if not listing.files:
        raise UsageError(f"cannot sign {model}: the model is empty (no files after ignores)")
    return listing


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def sign_oms(
    model: Path,
    key: PrivateKey,
    signature: Path,
    *,
    ignore: list[str] | None = None,
    certificate: x509.Certificate | None = None,
    chain: list[x509.Certificate] | None = None,
    shard_size: int | None = None,
    hash_type: str = "sha256",
    workers: int | None = None,
) -> Signed:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError("OMS signing needs an EC private key (P-256, P-384 or P-521); RSA keys sign --method detached")
    public = key.public_key()
    if certificate is not None and certificate.public_key() != public:
        raise UsageError("the signing certificate does not belong to the private key")
    sig_name = relative_inside(model, signature) if model.is_dir() else None
    ignores = oms.signing_ignores(ignore or [], sig_name) if model.is_dir() else ()
    listing = _listing_or_fail(model, ignores)
    serialization_ = oms.Serialization(
        method="shards" if shard_size else "files",
        hash_type=hash_type,
        allow_symlinks=False,
        shard_size=shard_size,
        ignore_paths=ignores,
    )
    hashed = hash_model(listing.files, serialization_, workers=workers)
    manifest = oms.Manifest(model.resolve().name, serialization_, hashed.resources)
    payload = oms.build_statement(manifest)
    sig = key.sign(oms.pae(payload), ec.ECDSA(ecdsa_hash(public)))
    if certificate is not None:
        material = oms.chain_material(
            [c.public_bytes(serialization.Encoding.DER) for c in [certificate, *(chain or [])]]
        )
    else:
        material = oms.key_material(oms_hint(public))
    write_atomic(signature, oms.assemble_bundle(payload, sig, material))
    return Signed([signature], listing.names, fingerprint(public), hashed.bytes_read)


def detached_targets(listing: Listing) -> tuple[list, list[str]]:
    """Split a listing into signed files and their `<file>.sig` signatures."""
    names = {f.name for f in listing.files}
    sigs = [
        f.name for f in listing.files if f.name.endswith(detached.SUFFIX) and f.name[: -len(detached.SUFFIX)] in names
    ]
    covered = [f for f in listing.files if f.name not in set(sigs)]
    return covered, sigs


def sign_detached(model: Path, key: PrivateKey, *, ignore: list[str] | None = None, workers: int | None = None) -> Signed:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError("detached signatures are RSA-PSS: give an RSA private key")
    ignores = tuple(DEFAULT_IGNORES) + tuple(ignore or []) if model.is_dir() else ()
    listing = _listing_or_fail(model, ignores)
    covered, _ = detached_targets(listing) if model.is_dir() else (listing.files, [])
    digests = hash_jobs([Job(f.path) for f in covered], "sha256", sizes=[f.size for f in covered], workers=workers)
    written = []
    for f, digest in zip(covered, digests):
        target = Path(f.path + detached.SUFFIX) if model.is_dir() else Path(str(model) + detached.SUFFIX)
        write_atomic(target, detached.sign_digest(key, digest))
        written.append(target)
    return Signed(written, sorted(f.name for f in covered), fingerprint(key.public_key()), sum(f.size for f in covered))
