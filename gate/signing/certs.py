"""The certificate method: validate the bundle's X.509 chain against roots the user trusts.

Path building and validation are cryptography's (RFC 5280 via its Rust
verifier). The leaf must be valid now, chain to a trusted certificate, and be
allowed to sign (key usage digitalSignature or extended key usage codeSigning).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from gate.errors import UsageError
from gate.signing.keys import PublicKey


class ChainError(ValueError):
    pass


def load_trusted_certificates(paths: list[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read certificate chain {path}: {error.strerror}") from None
        try:
            certs.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise UsageError(f"{path} holds no PEM certificate") from None
    if not certs:
        raise UsageError("no trusted certificates given (--certificate-chain)")
    return certs


def verify_chain(chain_der: list[bytes], trusted: list[x509.Certificate], now: dt.datetime | None = None) -> PublicKey:
    """Return the leaf's public key when the chain is trusted; raise ChainError naming the reason."""
    try:
        leaf, *intermediates = [x509.load_der_x509_certificate(c) for c in chain_der]
    except ValueError:
        raise ChainError("malformed bundle: a certificate in x509CertificateChain is not DER") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
        raise ChainError(
            f"signing certificate {leaf.subject.rfc4514_string()} is not valid now "
            f"(valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})"
        )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(trusted))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as error:
        raise ChainError(
            f"untrusted certificate chain: {leaf.subject.rfc4514_string()} does not chain to a trusted root ({error})"
        ) from None
    if not _may_sign(leaf):
        raise ChainError("signing certificate may not sign (no digitalSignature key usage or codeSigning EKU)")
    return leaf.public_key()  # type: ignore[return-value]


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        return ExtendedKeyUsageOID.CODE_SIGNING in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
