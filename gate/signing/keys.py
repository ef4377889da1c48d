"""Loading, identifying and generating keys (cryptography does all the crypto)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gate.errors import UsageError

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey]
PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]

# OMS's required curves and the hash each is used with (the Sigstore algorithm registry).
CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
_CURVE_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}


def fingerprint(key: PublicKey) -> str:
    """"sha256:<hex>" of the DER SubjectPublicKeyInfo: the id reports and policies use."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def oms_hint(key: PublicKey) -> str:
    """The key hint OMS bundles carry: SHA-256 hex of the PEM SubjectPublicKeyInfo (as model_signing writes it)."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def ecdsa_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    try:
        return _CURVE_HASH[key.curve.name]()
    except KeyError:
        raise UsageError(f"unsupported EC curve {key.curve.name} (use P-256, P-384 or P-521)") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from None


def load_public_key(path: Path) -> PublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"{path} is not a PEM public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        ecdsa_hash(key)
    elif not isinstance(key, rsa.RSAPublicKey):
        raise UsageError(f"{path}: only EC (P-256/384/521) and RSA public keys are supported")
    return key


def load_private_key(path: Path, password: bytes | None) -> PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is None:
            raise UsageError(
                f"{path} is encrypted: give its password in the environment variable named by --password-env"
            ) from None
        raise UsageError(f"{path} is not encrypted, but a password was given") from None
    except (ValueError, UnsupportedAlgorithm):
        hint = "wrong password, or " if password is not None else ""
        raise UsageError(f"cannot load private key {path} ({hint}not a PEM private key)") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa_hash(key.public_key())
    elif not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"{path}: only EC (P-256/384/521) and RSA private keys are supported")
    return key


def generate_key_pair(out_dir: Path, name: str, curve: str, password: bytes | None, *, force: bool) -> tuple[Path, Path]:
    """Write NAME.pem (private, mode 0600, created that way) and NAME.pub.pem; return their paths."""
    private = ec.generate_private_key(CURVES[curve])
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"--out-dir {out_dir}: is a file, not a folder") from None
    except OSError as error:
        raise UsageError(f"--out-dir {out_dir}: cannot create it: {error.strerror}") from None
    private_path, public_path = out_dir / f"{name}.pem", out_dir / f"{name}.pub.pem"
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite it")
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # Create with the final mode so the private key is never readable by others, even briefly.
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # umask may have narrowed it; make it exact
